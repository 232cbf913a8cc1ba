"""Shared fixtures: an app on SQLite and on PostgreSQL, a real SMTP server, seeded data."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from supportwidget import create_app
from supportwidget.models import Client, Site, Staff, db
from supportwidget.platform.database import init_schema

pytest_plugins = ["smtp_fixtures", "vonage_standin"]
# Test modules import helpers from these fixture modules: rewrite their asserts too.
pytest.register_assert_rewrite("browser_fixtures", "wordpress_fixtures")

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]


def _reset_postgresql(url: str) -> None:
    """Give each test an empty schema on the shared PostgreSQL database."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Yield a fresh database URL: SQLite always; PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    if not PG_URL:
        pytest.skip("PostgreSQL run skipped: set TEST_DATABASE_URL (CI does) to run it")
    _reset_postgresql(PG_URL)
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
        **overrides,
    }
    app = create_app(config)
    with app.app_context():
        init_schema()
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
