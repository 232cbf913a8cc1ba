"""`serve`: the production WSGI server, the notification worker and the uptime watch in one
process."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, current_app
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask, Task, WSGITask
from waitress.utilities import RequestEntityTooLarge

from supportwidget.platform import logs
from supportwidget.platform.database import init_schema
from supportwidget.watch.runner import Watcher
from supportwidget.worker import Workers

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
    """Run the web server (waitress) and, unless --no-worker, the worker and uptime watch."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    init_schema()
    logs.configure(app)  # after the migrations, whose logging setup would replace ours
    server = make_server(app, host, port, threads)
    workers = None if no_worker else Workers(app)
    if workers:
        workers.start()
    watcher = Watcher(app) if app.config["WATCH_ENABLED"] and not no_worker else None
    if watcher:
        watcher.start()
    click.echo(
        f"supportwidget listening on http://{host}:{port}/ "
        f"({'with' if workers else 'without'} worker"
        f"{', with uptime watch' if watcher else ''})"
    )
    try:
        server.run()
    finally:
        if watcher:
            watcher.stop()
        if workers:
            workers.stop()
