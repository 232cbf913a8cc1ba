"""Jobs: work handed to the worker through Huey, on lanes (one Huey instance each).

Each notification channel sends on a lane of its own, so an SMS page never waits behind a
slow SMTP server. Code hands work over by job name (`enqueue("deliver", ids, lane="sms")`);
the worker binds the names to functions (its job table), so nothing here knows a workflow.
Storage comes from QUEUE_URL: sqlite:///… (embedded), redis://… or postgresql://….
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import click
from flask import Flask, current_app
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

from supportwidget.models import db, utcnow

EXTENSION = "supportwidget-jobs"


@dataclass
class Lanes:
    """The Huey instance of each lane, and each job bound on each lane."""

    hueys: dict[str, Huey]
    tasks: dict[tuple[str, str], Any] = field(default_factory=dict)


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


def _in_app(app: Flask, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a job so it runs inside an application context."""

    def run(*args: Any) -> Any:
        with app.app_context():
            try:
                return fn(*args)
            finally:
                db.session.remove()

    run.__name__ = fn.__name__
    return run


def init_app(app: Flask, lanes: Iterable[str], jobs: Mapping[str, Callable[..., Any]]) -> None:
    """Create each lane's Huey from QUEUE_URL and bind every job on every lane."""
    url, immediate = app.config["QUEUE_URL"], bool(app.config["QUEUE_IMMEDIATE"])
    bound = Lanes({lane: make_huey(f"supportwidget-{lane}", url, immediate) for lane in lanes})
    for lane, huey in bound.hueys.items():
        for name, fn in jobs.items():
            bound.tasks[(lane, name)] = huey.task(name=name)(_in_app(app, fn))
    app.extensions[EXTENSION] = bound


def lanes(app: Flask | None = None) -> dict[str, Huey]:
    """Return the Huey instance of each lane (of the current app unless one is given)."""
    return (app or current_app).extensions[EXTENSION].hueys


def enqueue(job: str, *args: Any, lane: str, at: datetime | None = None) -> None:
    """Hand a job to a lane, to run now or at a time."""
    task = current_app.extensions[EXTENSION].tasks[(lane, job)]
    if at is not None and at > utcnow():
        task.schedule(args, eta=at)
    else:
        task(*args)


def storage_status() -> str:
    """Ask every lane's storage (SQLite file, Redis or PostgreSQL) whether it answers."""
    try:
        for huey in lanes().values():
            huey.pending_count()
    except Exception as exc:  # noqa: BLE001 - any storage failure means "not ok", said plainly
        return f"error: {type(exc).__name__}"
    return "ok"
