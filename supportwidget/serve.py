"""`serve`: the production WSGI server, the uptime watch and, in a process of its own, the
notification worker.

One command starts all and stops all: Ctrl-C or SIGTERM stops the worker and the watch with
the web server, and a worker that dies stops `serve` too (non-zero exit), so whatever restarts
`serve` restarts both; web requests never run without anyone to send their mail.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask, Task, WSGITask
from waitress.utilities import RequestEntityTooLarge

from supportwidget import config
from supportwidget.platform import logs, the_app
from supportwidget.platform.database import init_schema
from supportwidget.watch.runner import Watcher
from supportwidget.worker import SERVE_PARENT_ENV

log = logging.getLogger(__name__)

# Seconds the worker may take to finish its sends after SIGTERM before it is killed.
WORKER_STOP_SECONDS = 30
# Read by create_app's from_prefixed_env("SUPPORTWIDGET") in the worker process.
PUBLIC_URL_ENV = "SUPPORTWIDGET_PUBLIC_URL"

# Waitress's limits, for a server that may face the internet directly (better: behind nginx,
# see examples/deploy). Slow clients cost a socket each, not a thread: allow many sockets so
# a few hundred trickling connections do not lock everyone out, and close idle ones promptly.
LIMITS = {
    "connection_limit": 500,  # fits the usual 1024 open-files limit, with room for the rest
    "channel_timeout": 15,  # seconds a connection may send nothing
    "cleanup_interval": 5,  # how often idle connections are looked for and closed
    "max_request_header_size": 64 * 1024,
    "asyncore_use_poll": True,  # select() cannot watch sockets numbered above 1024
    "clear_untrusted_proxy_headers": True,
}


class UnreadBodyTask(WSGITask):
    """Pass a request whose body waitress refused to read to the app, which answers 413.

    Waitress's own 413 is a line of English; the app's is the page in the requester's language.
    """

    def execute(self) -> None:
        self.set_close_on_finish()  # the unread body must not be taken for the next request
        super().execute()


def error_task(channel: HTTPChannel, request: Any) -> Task:
    """Return the task answering a request waitress could not take."""
    if isinstance(request.error, RequestEntityTooLarge) and request.content_length > 0:
        return UnreadBodyTask(channel, request)
    return ErrorTask(channel, request)


class Channel(HTTPChannel):
    error_task_class = staticmethod(error_task)


def make_server(app: Flask, host: str, port: int, threads: int) -> Any:
    """Return a waitress server with our limits; bodies over MAX_CONTENT_LENGTH stay unread."""
    settings: dict[str, Any] = {**LIMITS, "host": host, "port": port, "threads": threads}
    if app.config["MAX_CONTENT_LENGTH"]:
        settings["max_request_body_size"] = int(app.config["MAX_CONTENT_LENGTH"]) + 1
    sockets: dict[int, Any] = {}
    server = create_server(app, map=sockets, **settings)
    for listener in list(sockets.values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = Channel
    return server


class WorkerProcess:
    """The `worker` command as a child process, watched: its death stops `serve`."""

    def __init__(self, app_import: str, public_url: str) -> None:
        self.stopping = threading.Event()
        self.died: int | None = None
        cmd = [sys.executable, "-m", "flask", "--app", app_import, "worker"]
        # The worker writes links too (re-pages, digests): the same PUBLIC_URL as this server.
        env = {**os.environ, SERVE_PARENT_ENV: str(os.getpid()), PUBLIC_URL_ENV: public_url}
        # Its own process group: a terminal's Ctrl-C reaches us, and we stop it in order.
        self.proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        threading.Thread(target=self._watch, name="supportwidget-worker-watch", daemon=True).start()

    def _watch(self) -> None:
        code = self.proc.wait()
        if not self.stopping.is_set():
            self.died = code
            log.error("the worker process exited (status %s): stopping serve", code)
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        """Ask the worker to finish its sends and stop; kill it if it will not."""
        self.stopping.set()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds server.run() like Ctrl-C, so the worker is stopped


def app_import_path() -> str:
    """Return how this process was told to load the app (`--app`), for the worker to do the same."""
    info = click.get_current_context().find_object(ScriptInfo)
    return (info.app_import_path if info else None) or "supportwidget"


def follow_port(app: Flask, host: str, port: int) -> None:
    """Point PUBLIC_URL at this server when it was left at its default, so links work."""
    if app.config["PUBLIC_URL"] != config.PUBLIC_URL:
        return  # set on purpose (a proxy, a real name): keep it
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared
    shown = f"[{shown}]" if ":" in shown else shown
    app.config["PUBLIC_URL"] = f"http://{shown}:{port}"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Run the web server only (workers and watchers run elsewhere).",
)
def serve_command(host: str, port: int, threads: int, no_worker: bool) -> None:
    """Run the web server (waitress) and, unless --no-worker, the worker beside it."""
    app = the_app()
    follow_port(app, host, port)
    init_schema()
    # Started first: it imports the app while this process binds and warms up.
    worker = None if no_worker else WorkerProcess(app_import_path(), app.config["PUBLIC_URL"])
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        logs.configure(app)  # after the migrations, whose logging setup would replace ours
        server = make_server(app, host, port, threads)
    except BaseException:
        if worker:
            worker.stop()
        raise
    watcher = Watcher(app) if app.config["WATCH_ENABLED"] and not no_worker else None
    if watcher:
        watcher.start()
    click.echo(
        f"supportwidget listening on http://{host}:{port}/ "
        f"({f'worker in process {worker.proc.pid}' if worker else 'without worker'}"
        f"{', with uptime watch' if watcher else ''}); "
        f"links in e-mail and SMS use {app.config['PUBLIC_URL']}"
    )
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("Stopping…")
    finally:
        server.close()
        if watcher:
            watcher.stop()
        if worker:
            worker.stop()
    if worker and worker.died is not None:
        raise click.ClickException(f"the worker process exited (status {worker.died})")
