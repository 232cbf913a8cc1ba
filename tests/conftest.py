"""Shared fixtures: an app on SQLite and on PostgreSQL, a real SMTP server, seeded data."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from werkzeug.routing import Rule

from supportwidget import create_app
from supportwidget.models import Client, Site, Staff, db
from supportwidget.platform.database import MIGRATIONS, init_schema

pytest_plugins = ["smtp_fixtures", "vonage_standin"]
# Test modules import helpers from these fixture modules: rewrite their asserts too.
pytest.register_assert_rewrite("browser_fixtures", "wordpress_fixtures")

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]
# Staff passwords hashed with one cheap round: scrypt costs ~0.1 s per login under test.
CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1"

# Migrating costs about a second a test. Each session migrates once: SQLite into a template
# file that every test copies, PostgreSQL into the shared database whose tables are emptied
# between tests (dropped and migrated again only when a test changed the schema).
# open_ticket_count keeps one row per shard, which deleting the tickets counts back to zero.
_KEPT_TABLES = ("alembic_version", "open_ticket_count")


class SharedTemplateCode(BytecodeCache):
    """Keep compiled templates in memory for every app of the session.

    Each test builds its own app, and each app's Jinja environment would otherwise compile
    every template it renders again (a quarter of a second a test). Jinja checks the
    source's checksum before using what is kept here.
    """

    def __init__(self) -> None:
        self.code: dict[tuple[object, ...], bytes] = {}

    def _key(self, bucket: Bucket) -> tuple[object, ...]:
        env = bucket.environment
        # Flask's autoescape is a method bound to each app: key on the function, or no app
        # would ever find what another one compiled.
        autoescape = getattr(env.autoescape, "__func__", env.autoescape)
        trimmed = env.policies.get("ext.i18n.trimmed")  # the one policy the compiler reads here
        return (bucket.key, tuple(sorted(env.extensions)), autoescape, trimmed)

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self.code.get(self._key(bucket))
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[self._key(bucket)] = bucket.bytecode_to_string()


TEMPLATE_CODE = SharedTemplateCode()
_compile_url_builder = Rule._compile_builder


def _shared_url_builder(rule: Rule, append_unknown: bool = True) -> Callable[..., Any]:
    """Compile each URL rule's builder once per session instead of once per app.

    Werkzeug writes and compiles a small function per rule for url_for (most of create_app's
    time). That function depends only on the rule itself: its own converters are passed in
    when it runs, so every app can call the one compiled for the first.
    """
    defaults = tuple(sorted((name, repr(value)) for name, value in (rule.defaults or {}).items()))
    key = (rule.rule, rule.host, rule.subdomain, tuple(rule._trace), defaults, append_unknown)
    builder = URL_BUILDERS.get(key)
    if builder is None:
        builder = URL_BUILDERS[key] = _compile_url_builder(rule, append_unknown)
    return builder


URL_BUILDERS: dict[tuple[object, ...], Callable[..., Any]] = {}


@pytest.fixture(scope="session", autouse=True)
def shared_url_builders() -> Iterator[None]:
    """Let every app of the session share its compiled URL builders."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Rule, "_compile_builder", _shared_url_builder)
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Leave Chromium out of the fast tier: every `browser` test is `slow` too."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@functools.cache
def head_revision() -> str | None:
    """Return the newest migration's revision."""
    return ScriptDirectory(MIGRATIONS).get_current_head()


def migrate_unless_current() -> None:
    """Migrate the app's database unless it is already at the newest revision."""
    with db.engine.connect() as conn:
        if sa.inspect(conn).has_table("alembic_version"):
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            if current is not None and current == head_revision():
                return
    init_schema()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file migrated to the newest revision, for tests to copy."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.sqlite"
    with running(make_app(f"sqlite:///{path}", folder)):
        pass  # running() closes every connection: SQLite folds its WAL back into the file
    return path


def sqlite_copy(template: Path, path: Path) -> str:
    """Copy the migrated template to `path` and return its URL."""
    shutil.copyfile(template, path)
    wal = template.with_name(template.name + "-wal")  # normally folded back on close
    if wal.exists():
        shutil.copyfile(wal, path.with_name(path.name + "-wal"))
    return f"sqlite:///{path}"


def _schema_of(conn: sa.Connection) -> list[tuple[str, ...]]:
    """Return every column of the public schema with its type, nullability and default."""
    rows = conn.execute(
        sa.text(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, column_name"
        )
    )
    return [tuple(str(value) for value in row) for row in rows]


@dataclass(frozen=True)
class MigratedPostgresql:
    """What the PostgreSQL test database looks like migrated, and how to empty it."""

    schema: list[tuple[str, ...]]
    #: DELETE every table, children first, then restart every id sequence: one round trip.
    #: A TRUNCATE of every table costs ten times more (new files for each table).
    emptying: str


@pytest.fixture(scope="session")
def postgresql_schema(tmp_path_factory: pytest.TempPathFactory) -> MigratedPostgresql:
    """Migrate the PostgreSQL test database once; return its schema to compare against."""
    assert PG_URL
    _reset_postgresql(PG_URL)
    with running(make_app(PG_URL, tmp_path_factory.mktemp("postgresql-template"))):
        pass
    engine = sa.create_engine(PG_URL)
    with engine.connect() as conn:
        schema = _schema_of(conn)
        metadata = sa.MetaData()
        metadata.reflect(conn)
        sequences = conn.execute(
            sa.text("SELECT relname FROM pg_class WHERE relkind = 'S' ORDER BY relname")
        ).scalars()
        emptying = [
            f'DELETE FROM "{table.name}"'
            for table in reversed(metadata.sorted_tables)
            if table.name not in _KEPT_TABLES
        ] + [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences]
    engine.dispose()
    return MigratedPostgresql(schema, "; ".join(emptying))


def _reset_postgresql(url: str) -> None:
    """Give the shared PostgreSQL database an empty schema (make_app migrates it)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _empty_postgresql(url: str, migrated: MigratedPostgresql) -> None:
    """Empty every table and restart the ids; start from no schema if a test changed it."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        revision = None
        if conn.execute(sa.text("SELECT to_regclass('alembic_version')")).scalar():
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if revision == head_revision() and _schema_of(conn) == migrated.schema:
            conn.exec_driver_sql(migrated.emptying)
            engine.dispose()
            return
    engine.dispose()
    _reset_postgresql(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Yield a fresh database URL: SQLite always; PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path / "test.sqlite")
    if not PG_URL:
        pytest.skip("PostgreSQL run skipped: set TEST_DATABASE_URL (CI does) to run it")
    _empty_postgresql(PG_URL, request.getfixturevalue("postgresql_schema"))
    return PG_URL


def make_app(database_url: str, tmp_path: Path, **overrides: Any) -> Flask:
    """Create an app on its own instance folder and database, schema migrated."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "QUEUE_URL": "memory://",
        "QUEUE_IMMEDIATE": True,
        "RATELIMIT_ENABLED": False,
        "PUBLIC_URL": "http://support.test",
        "MAIL_DEFAULT_SENDER": "Support desk <support@agency.test>",
        "STAFF_NOTIFY_EMAILS": ["inbox@agency.test"],
        "PASSWORD_HASH_METHOD": CHEAP_PASSWORD_HASH,
        **overrides,
    }
    app = create_app(config)
    app.jinja_env.bytecode_cache = TEMPLATE_CODE
    with app.app_context():
        migrate_unless_current()
    return app


@contextmanager
def running(app: Flask) -> Iterator[Flask]:
    """Work inside the app's context, then close its database connections."""
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra settings for `app`; a test module overrides this fixture to change them."""
    return {}


@pytest.fixture
def app(
    database_url: str, tmp_path: Path, smtp_server: Any, app_config: dict[str, Any]
) -> Iterator[Flask]:
    """Yield an app that mails through a real SMTP server and runs tasks immediately."""
    # A module's app_config may override the mail settings too.
    config = {**smtp_server.config(), **app_config}
    with running(make_app(database_url, tmp_path, **config)) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def site(app: Flask) -> Site:
    """Seed a client without an SLA, one site and two staff members."""
    return seed_site()


def seed_site() -> Site:
    """Add Acme Shop (no SLA), its site acme.test, and Alice (admin) and Bob, both on call."""
    acme = Client(name="Acme Shop", emails=["owner@acme.test"])
    site = Site(
        client=acme,
        name="acme.test",
        url="https://acme.test",
        allowed_origins=["https://acme.test"],
    )
    db.session.add_all(
        [
            acme,
            site,
            Staff(
                name="Alice",
                email="alice@agency.test",
                phone="+447700900001",
                on_call=True,
                role="admin",
            ),
            Staff(name="Bob", email="bob@agency.test", phone="+447700900002", on_call=True),
        ]
    )
    db.session.commit()
    return site


def vonage_signed(params: dict[str, str], secret: str) -> dict[str, str]:
    """Sign webhook parameters the way Vonage does with md5hash (sorted &k=v, then secret)."""
    payload = "".join(
        f"&{k}={v.replace('&', '_').replace('=', '_')}" for k, v in sorted(params.items())
    )
    return {**params, "sig": hashlib.md5((payload + secret).encode()).hexdigest()}  # noqa: S324


def form_token(client: FlaskClient, path: str) -> str:
    """Load a hosted form and return its form token."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="form_token" type="hidden" value="([^"]+)"', page)
    assert match, "form token not found on the page"
    return match.group(1)


def standard_fields(**overrides: Any) -> dict[str, Any]:
    """Return a valid standard request."""
    return {
        "subject": "Contact form sends no e-mail",
        "description": "Since yesterday the contact form says sent, but nothing arrives.",
        "name": "Jane Owner",
        "email": "jane@example.com",
        **overrides,
    }
