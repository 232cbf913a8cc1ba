"""Faults at submit time: the requester is told, their text is kept, nothing is half-written."""

from __future__ import annotations

import io
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from supportwidget import database
from supportwidget.models import Notification, Ticket, db

from conftest import form_token, make_app, running, standard_fields


@pytest.fixture
def sqlite_app(tmp_path, smtp_server, monkeypatch):
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    app = make_app(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        tmp_path,
        **smtp_server.config(),
        AGENCY_PHONE="+44 20 7946 0000",
    )
    with running(app):
        yield app


def seed_site():
    from supportwidget.models import Client, Site

    site = Site(
        client=Client(name="Acme", emails=[]),
        name="acme.test",
        url="https://acme.test",
        allowed_origins=[],
    )
    db.session.add(site)
    db.session.commit()
    return site


def test_database_locked_at_submit_answers_503_with_the_text_kept(sqlite_app, tmp_path):
    site = seed_site()
    client = sqlite_app.test_client()
    path = f"/s/{site.site_key}"
    data = standard_fields(description="My <b>precise</b> description, 42 lines long.")
    data["form_token"] = form_token(client, path)
    # Another process holds the write lock for longer than our busy timeout.
    locker = sqlite3.connect(tmp_path / "db.sqlite", check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        response = client.post(path, data=data)
    finally:
        locker.rollback()
        locker.close()
    text = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "was not sent yet" in text and "+44 20 7946 0000" in text
    assert "My &lt;b&gt;precise&lt;/b&gt; description, 42 lines long." in text
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0
    # Sent again once the database is back: filed once.
    retry = client.post(path, data=data)
    assert retry.status_code == 200 and "SUP-" in retry.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 1


def test_upload_folder_unusable_answers_503_and_stores_nothing(sqlite_app, tmp_path):
    site = seed_site()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the upload folder should be")
    sqlite_app.config["UPLOAD_FOLDER"] = str(blocker)
    client = sqlite_app.test_client()
    from test_standard_request import png_bytes

    data = standard_fields()
    data["form_token"] = form_token(client, f"/s/{site.site_key}")
    data["screenshots"] = [(io.BytesIO(png_bytes()), "shot.png")]
    response = client.post(f"/s/{site.site_key}", data=data, content_type="multipart/form-data")
    assert response.status_code == 503
    assert "Screenshots could not be kept" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0


def test_concurrent_double_submit_of_one_token_files_one_ticket(app, site):
    client = app.test_client()
    token = form_token(client, f"/s/{site.site_key}")
    results = []

    def post():
        with app.test_client() as c:
            results.append(
                c.post(
                    f"/s/{site.site_key}", data={**standard_fields(), "form_token": token}
                ).status_code
            )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 1


def test_database_unreachable_answers_503_with_the_text_kept(tmp_path):
    from supportwidget import create_app

    # Nothing listens on port 1: every connection is refused at once.
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "QUEUE_URL": "memory://",
            "QUEUE_IMMEDIATE": True,
            "RATELIMIT_ENABLED": False,
            "AGENCY_PHONE": "+44 20 7946 0000",
        }
    )
    data = standard_fields(description="Checkout is down since 9:00, customers cannot pay.")
    response = app.test_client().post("/s/any-site-key", data={**data, "form_token": "t"})
    text = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Checkout is down since 9:00, customers cannot pay." in text
    assert "+44 20 7946 0000" in text
    health = app.test_client().get("/healthz")
    assert health.status_code == 503 and health.json["database"].startswith("error")
