"""The notification worker: Huey queues for mail and SMS, periodic re-drive, heartbeat."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import click
import sqlalchemy as sa
from flask import Flask, current_app
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy.exc import IntegrityError

from supportwidget.models import Heartbeat, db, utcnow

log = logging.getLogger(__name__)
SCHEDULER = "scheduler-lease"


@dataclass
class Queues:
    """One queue per channel, so an SMS never waits behind a slow SMTP server."""

    mail: Huey
    sms: Huey
    tasks: dict[str, Any] = field(default_factory=dict)


def make_huey(name: str, url: str, immediate: bool = False) -> Huey:
    """Return a Huey instance for a QUEUE_URL (sqlite:///, redis://, postgresql://, memory://)."""
    scheme = urlparse(url).scheme
    if scheme == "memory" or immediate:
        return MemoryHuey(name, results=False, immediate=immediate)
    if scheme == "sqlite":
        path = url.removeprefix("sqlite:///")
        # No fsync per enqueue: the outbox row is the durable record, the re-drive the backstop.
        return SqliteHuey(name, filename=path, results=False, timeout=10, fsync=False)
    if scheme in ("redis", "rediss"):
        import redis

        pool = redis.ConnectionPool.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return RedisHuey(name, connection_pool=pool, results=False)
    if scheme.startswith(("postgresql", "postgres")):
        from huey.contrib.sql_huey import SqlHuey
        from playhouse.postgres_ext import Psycopg3Database

        parsed = urlparse(url)
        database = Psycopg3Database(
            parsed.path.lstrip("/"),
            host=parsed.hostname,
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            connect_timeout=10,
        )
        return SqlHuey(name, database=database, results=False)
    raise click.UsageError(f"QUEUE_URL scheme {scheme!r} is not supported")


def _in_app(app: Flask, fn: Any) -> Any:
    """Wrap a task body so it runs inside an application context."""

    def run(*args: Any) -> Any:
        with app.app_context():
            try:
                return fn(*args)
            finally:
                db.session.remove()

    run.__name__ = fn.__name__
    return run


def _register(app: Flask, queues: Queues) -> None:
    from supportwidget import periodic
    from supportwidget.notify import outbox

    for channel, huey in (("email", queues.mail), ("sms", queues.sms)):
        queues.tasks[channel] = huey.task(name="deliver")(_in_app(app, outbox.deliver))
    queues.tasks["call"] = queues.sms.task(name="call")(_in_app(app, periodic.call))


def queues() -> Queues:
    """Return the current app's queues."""
    return current_app.extensions["supportwidget-queues"]


def enqueue_delivery(ids: list[int], channel: str, at: datetime | None = None) -> None:
    """Queue the delivery of a batch of notifications, now or at a time."""
    task = queues().tasks[channel]
    if at is not None and at > utcnow():
        task.schedule((ids,), eta=at)
    else:
        task(ids)


def enqueue_call(name: str, *args: Any, at: datetime | None = None) -> None:
    """Queue a named periodic-module function on the SMS queue (e.g. a re-page at a time)."""
    task = queues().tasks["call"]
    if at is not None and at > utcnow():
        task.schedule((name, *args), eta=at)
    else:
        task(name, *args)


def beat(name: str) -> None:
    """Record that this worker is alive."""
    row = db.session.get(Heartbeat, name) or Heartbeat(name=name, beat_at=utcnow())
    row.beat_at = utcnow()
    db.session.add(row)
    db.session.commit()


def take_scheduler_lease(holder: str, seconds: float) -> bool:
    """Let exactly one worker process run the periodic jobs; a dead holder's lease expires."""
    now = utcnow()
    if db.session.get(Heartbeat, SCHEDULER) is None:
        db.session.add(Heartbeat(name=SCHEDULER, beat_at=now - timedelta(days=1), holder=""))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    taken = db.session.execute(
        sa.update(Heartbeat)
        .where(
            Heartbeat.name == SCHEDULER,
            sa.or_(
                Heartbeat.holder == holder, Heartbeat.beat_at < now - timedelta(seconds=seconds)
            ),
        )
        .values(holder=holder, beat_at=now)
    ).rowcount
    db.session.commit()
    return taken == 1


class Workers:
    """Consumers for both queues plus a heartbeat and the periodic jobs, in any process."""

    def __init__(self, app: Flask, mail_threads: int = 2, sms_threads: int = 8) -> None:
        q: Queues = app.extensions["supportwidget-queues"]
        self.app = app
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.interval = float(app.config["SCHEDULER_SECONDS"])
        self.consumers = [
            Consumer(q.mail, workers=mail_threads, periodic=False),
            Consumer(q.sms, workers=sms_threads, periodic=False, initial_delay=0.05, max_delay=0.5),
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
        from supportwidget import periodic

        beat(self.name)
        if take_scheduler_lease(self.name, 3 * self.interval):
            periodic.run_all()

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
    from supportwidget.platform.logs import configure

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    configure(app)
    workers = Workers(app)
    signal.signal(signal.SIGTERM, lambda *_: workers.stopped.set())
    workers.start()
    click.echo(f"Worker {workers.name} running; Ctrl-C to stop.")
    try:
        while not workers.stopped.wait(1):
            pass
    except KeyboardInterrupt:
        click.echo("Stopping worker…")
    finally:
        workers.stop()


def init_app(app: Flask) -> None:
    """Create the queues from QUEUE_URL and register the worker command."""
    url = app.config["QUEUE_URL"]
    immediate = bool(app.config["QUEUE_IMMEDIATE"])
    q = Queues(
        mail=make_huey("supportwidget-mail", url, immediate),
        sms=make_huey("supportwidget-sms", url, immediate),
    )
    _register(app, q)
    app.extensions["supportwidget-queues"] = q
    app.cli.add_command(worker_command)
