"""Faults at submit time: the requester is told, their text is kept, nothing is half-written."""

from __future__ import annotations

import io
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from supportwidget.models import Notification, Ticket, db
from supportwidget.platform import database

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


FULL_DISK_SCENARIO = """
import io, json, random, sys
from pathlib import Path

from PIL import Image
import sqlalchemy as sa
from conftest import form_token, make_app, standard_fields
from supportwidget.models import Client, Site, Ticket, db

tmp, uploads = sys.argv[1], sys.argv[2]
app = make_app(f"sqlite:///{tmp}/db.sqlite", Path(tmp), UPLOAD_FOLDER=uploads)

def png(side):
    noise = random.Random(side).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(out, format="PNG")
    return out.getvalue()

def post(client, site, image):
    data = {**standard_fields(), "form_token": form_token(client, f"/s/{site.site_key}")}
    data["screenshots"] = [(io.BytesIO(image), "shot.png")]
    response = client.post(f"/s/{site.site_key}", data=data, content_type="multipart/form-data")
    return response.status_code, response.get_data(as_text=True)

with app.app_context():
    site = Site(client=Client(name="Acme", emails=[]), name="acme.test", url="https://acme.test",
                allowed_origins=[])
    db.session.add(site)
    db.session.commit()
    client = app.test_client()
    big_status, big_page = post(client, site, png(200))  # ~120 KB: more than the disk holds
    after_big = db.session.scalar(sa.select(sa.func.count(Ticket.id)))
    small_status, _ = post(client, site, png(40))  # ~5 KB: fits if nothing was left behind
    print(json.dumps({
        "big": big_status, "kept_text": "Screenshots could not be kept" in big_page,
        "tickets_after_big": after_big, "small": small_status,
        "tickets": db.session.scalar(sa.select(sa.func.count(Ticket.id))),
    }))
"""


@pytest.mark.slow  # a subprocess in its own mount namespace with a tiny tmpfs: many seconds
def test_upload_folder_full_answers_503_and_leaves_no_half_file(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    # A 64 KB tmpfs as the upload folder, mounted in a private user+mount namespace.
    namespace = ["unshare", "--user", "--map-root-user", "--mount"]
    try:
        probe = subprocess.run([*namespace, "true"], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        pytest.skip("needs unshare (util-linux) to mount a small tmpfs as a full disk")
    if probe.returncode != 0:
        pytest.skip(f"cannot make a user+mount namespace here: {probe.stderr.strip()[-200:]}")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK_SCENARIO)
    tests = Path(__file__).parent
    mount = f"mount -t tmpfs -o size=64k tmpfs {uploads}"
    run = f"exec {sys.executable} {script} {tmp_path} {uploads}"
    done = subprocess.run(
        [*namespace, "sh", "-c", f"{mount} && {run}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(tests)},
        cwd=tests.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    # The requester is told, their text kept; no ticket; and no partial file fills the disk,
    # so the next, smaller screenshot still fits.
    assert outcome == {
        "big": 503,
        "kept_text": True,
        "tickets_after_big": 0,
        "small": 200,
        "tickets": 1,
    }


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
