"""The notification worker: a Huey consumer per lane, a heartbeat, the scheduler lease, and
the one table of every job it runs. Nothing registers itself anywhere at import time: the
worker binds the workflows to the job lanes (platform.jobs) and to the outbox here."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from huey.consumer import Consumer

from supportwidget.emergencies import paging
from supportwidget.models import db
from supportwidget.notify import outbox
from supportwidget.notify.channels import CHANNELS
from supportwidget.notify.channels.base import Channel
from supportwidget.platform import jobs, kept, the_app
from supportwidget.platform.heartbeat import beat, take_scheduler_lease
from supportwidget.platform.logs import configure
from supportwidget.sla import deadlines
from supportwidget.watch import incidents

log = logging.getLogger(__name__)

#: Jobs code hands to a lane by name (platform.jobs.enqueue): they run on the worker.
JOBS: dict[str, Callable[..., Any]] = {
    # Every channel's rows, each on its channel's own lane: e-mail, SMS pages, calls to staff.
    "deliver": outbox.deliver,
    "repage": paging.repage,
}
#: Jobs the holder of the scheduler lease runs every SCHEDULER_SECONDS, in this order.
PERIODIC: dict[str, Callable[[], Any]] = {
    "repage_due": paging.repage_due,
    "redrive": outbox.redrive,
    "report_failures": outbox.report_failures,
    "warn_breaches": deadlines.warn_breaches,
    "prune_kept": kept.prune_expired,
    "prune_checks": incidents.prune,
}
#: Set by `serve` on the worker it starts: the pid to outlive no longer than.
SERVE_PARENT_ENV = "SW_SERVE_PARENT_PID"  # not SUPPORTWIDGET_*: that prefix is config
#: What follows a notification that failed for good: staff hear that a page did not arrive.
ON_FAILURE = (paging.report_unpaged,)


def run_periodic() -> None:
    """Run every periodic job once (the worker holding the scheduler lease does, each tick)."""
    for job in PERIODIC.values():
        job()


class Workers:
    """A consumer per lane plus a heartbeat and the periodic jobs, in any process."""

    def __init__(self, app: Flask) -> None:
        hueys = jobs.lanes(app)
        self.app = app
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.interval = float(app.config["SCHEDULER_SECONDS"])
        # Each lane with the threads and polling of (the first of) its channels.
        channels: dict[str, Channel] = {}
        for channel in CHANNELS.values():
            channels.setdefault(channel.lane, channel)
        self.consumers = [
            Consumer(
                hueys[lane],
                workers=channel.threads,
                periodic=False,
                initial_delay=channel.poll[0],
                max_delay=channel.poll[1],
            )
            for lane, channel in channels.items()
        ]
        self.stopped = threading.Event()

    def start(self) -> None:
        """Start scheduler and worker threads without touching signal handlers."""
        for consumer in self.consumers:
            consumer.scheduler.start()
            for _, thread in consumer.worker_threads:
                thread.start()
        threading.Thread(target=self._tick_forever, name="supportwidget-tick", daemon=True).start()
        log.info("worker %s started", self.name)

    def stop(self) -> None:
        """Stop all consumers, letting running sends finish."""
        self.stopped.set()
        for consumer in self.consumers:
            consumer.stop(graceful=True)

    def tick(self) -> None:
        """Beat, and if this process holds the lease, run the periodic jobs once."""
        beat(self.name)
        if take_scheduler_lease(self.name, 3 * self.interval):
            run_periodic()

    def _tick_forever(self) -> None:
        while not self.stopped.is_set():
            with self.app.app_context():
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - a database blip must not stop the loop
                    log.exception("periodic jobs failed; retrying next tick")
                finally:
                    db.session.remove()
            self.stopped.wait(self.interval)


@click.command("worker")
def worker_command() -> None:
    """Run the notification worker alone (scale-out)."""
    app = the_app()
    configure(app)
    workers = Workers(app)
    signal.signal(signal.SIGTERM, lambda *_: workers.stopped.set())
    workers.start()
    click.echo(f"Worker {workers.name} running; Ctrl-C to stop.")
    # Started by `serve`: stop when it is gone, even killed without a chance to stop us.
    parent = os.environ.get(SERVE_PARENT_ENV)
    try:
        while not workers.stopped.wait(1):
            if parent and os.getppid() != int(parent):
                click.echo("serve is gone: stopping worker…")
                break
    except KeyboardInterrupt:
        click.echo("Stopping worker…")
    finally:
        workers.stop()


def init_app(app: Flask) -> None:
    """Create every channel's lane, bind the jobs to them and the failure follow-ups."""
    jobs.init_app(app, dict.fromkeys(channel.lane for channel in CHANNELS.values()), JOBS)
    outbox.init_app(app, on_failure=ON_FAILURE)
