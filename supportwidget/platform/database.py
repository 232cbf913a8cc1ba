"""Database binding, migrations and the init-db command."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask_migrate import Migrate, upgrade
from sqlalchemy import event
from sqlalchemy.engine import make_url

from supportwidget.models import UTCDateTime, db

migrate = Migrate()
MIGRATIONS = str(Path(__file__).parent.parent / "migrations")
# How long a SQLite writer waits for another process's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: object, connection_record: object) -> None:
    """Use WAL and wait for locks on SQLite, so the web server and worker share it."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


_sqlite_writer = threading.Lock()


def write_lock() -> AbstractContextManager[object]:
    """Serialise this process's writers on SQLite.

    SQLite allows one writer; threads that wait in its busy handler sleep in coarse naps and
    lose out unfairly (multi-second p99 under load). A lock in the process queues them fairly.
    """
    return _sqlite_writer if db.engine.dialect.name == "sqlite" else nullcontext()


def commit_keeping_loaded() -> None:
    """Commit without expiring the session's objects, for a caller that reads them next.

    Only for what the caller itself just wrote or claimed: nothing else can have changed it.
    """
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def _render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    """Write UTC datetime columns as plain DateTime, so migrations never import models."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def init_schema() -> None:
    """Create or upgrade the schema to the newest migration."""
    upgrade(directory=MIGRATIONS)


@click.command("init-db")
def init_db_command() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    init_schema()
    click.echo("Database schema is up to date.")


def postgresql_timeouts(query: Mapping[str, Any], statement_ms: int) -> dict[str, object]:
    """Return connect arguments that never wait forever: connecting, or a statement stuck
    behind a lock. What the database URL already says (its own `options`, such as a
    search_path, or its own timeouts) is kept: connect arguments replace URL parameters.
    """
    given = query.get("options") or ""
    given = " ".join(given) if isinstance(given, tuple) else given
    if "statement_timeout" not in given:
        given = f"{given} -c statement_timeout={statement_ms}".strip()
    args: dict[str, object] = {"options": given}
    if "connect_timeout" not in query:
        args["connect_timeout"] = 10
    return args


def init_app(app: Flask) -> None:
    """Bind the database and migrations."""
    options: dict[str, object] = {"pool_pre_ping": True}
    url = make_url(str(app.config["SQLALCHEMY_DATABASE_URI"]))
    if url.get_backend_name() == "postgresql":
        options["connect_args"] = postgresql_timeouts(
            url.query, int(app.config["DATABASE_STATEMENT_TIMEOUT_MS"])
        )
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, **app.config["SQLALCHEMY_ENGINE_OPTIONS"]}
    db.init_app(app)
    with app.app_context():  # our engines only, bound here rather than on import
        for engine in db.engines.values():
            event.listen(engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True, render_item=_render_item)
