"""The real worker: `serve` and `worker` processes on each queue storage, and a killed worker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from supportwidget.models import Client, Notification, Site, Staff, db
from supportwidget.notify import outbox
from supportwidget.tickets import filing as tickets

from conftest import PG_URL, make_app, standard_fields
from smtp_fixtures import free_port

REDIS_URL = os.environ.get("TEST_REDIS_URL")
QUEUES = ["sqlite", "redis", "postgresql"]


@pytest.fixture(params=QUEUES)
def queue_url(request, tmp_path):
    """Yield a real queue storage: a SQLite file, or Redis / PostgreSQL when CI provides them."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.sqlite'}"
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("Redis queue run skipped: set TEST_REDIS_URL (CI does) to run it")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        return REDIS_URL
    if not PG_URL:
        pytest.skip("PostgreSQL queue run skipped: set TEST_DATABASE_URL (CI does) to run it")
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS kv, schedule, task CASCADE"))
    engine.dispose()
    return PG_URL


def service_env(database_url, queue_url, tmp_path, smtp_server, **extra) -> dict[str, str]:
    """Configure a service process the way an operator does: SUPPORTWIDGET_* variables."""
    settings = {
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "QUEUE_URL": queue_url,
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "MAIL_SERVER": smtp_server.host,
        "MAIL_PORT": str(smtp_server.port),
        "MAIL_DEFAULT_SENDER": "support@agency.test",
        "RATELIMIT_ENABLED": "false",
        "SCHEDULER_SECONDS": "1",
        "OUTBOX_LEASE_SECONDS": "3",
        **extra,
    }
    env = {**os.environ, "SUPPORTWIDGET_INSTANCE_PATH": str(tmp_path / "instance")}
    env.update({f"SUPPORTWIDGET_{k}": v for k, v in settings.items()})
    return env


def spawn(env, *args, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "supportwidget", *args],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def seed(app) -> Site:
    with app.app_context():
        acme = Client(name="Acme Shop", emails=["owner@acme.test"])
        site = Site(client=acme, name="acme.test", url="https://acme.test", allowed_origins=[])
        db.session.add_all(
            [
                acme,
                site,
                Staff(name="Alice", email="alice@agency.test"),
                Staff(name="Bob", email="bob@agency.test"),
            ]
        )
        db.session.commit()
        return site.site_key


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_serve_files_a_ticket_and_its_worker_delivers_the_mail(
    database_url, queue_url, tmp_path, smtp_server
):
    app = make_app(
        database_url, tmp_path, QUEUE_URL=queue_url, QUEUE_IMMEDIATE=False, STAFF_NOTIFY_EMAILS=[]
    )
    site_key = seed(app)
    port = free_port()
    env = service_env(database_url, queue_url, tmp_path, smtp_server)
    server = spawn(env, "serve", "--port", str(port), log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(base + "/healthz")[0] == 200, 30, "a healthy service")
        health = json.loads(get(base + "/healthz")[1])
        assert health["database"] == "ok" and health["worker"] == "ok"
        form = get(f"{base}/s/{site_key}")[1]
        token = re.search(r'name="form_token" type="hidden" value="([^"]+)"', form).group(1)
        body = urllib.parse.urlencode({**standard_fields(), "form_token": token}).encode()
        with urllib.request.urlopen(f"{base}/s/{site_key}", data=body, timeout=10) as answer:
            assert re.search(r"SUP-\d+", answer.read().decode())
        mails = smtp_server.wait_for(3, timeout=20)
        assert sorted(m["To"] for m in mails) == [
            "alice@agency.test",
            "bob@agency.test",
            "jane@example.com",
        ]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]


def all_sent(app) -> bool:
    """Tell whether every outbox row is recorded as sent."""
    with app.app_context():
        statuses = set(db.session.scalars(sa.select(Notification.status)))
        db.session.remove()
    return statuses == {"sent"}


@pytest.mark.slow
def test_two_workers_one_killed_mid_run_lose_nothing_and_send_each_mail_once(
    database_url, queue_url, tmp_path, smtp_server
):
    if database_url.startswith("sqlite") and not queue_url.startswith("sqlite"):
        pytest.skip("a SQLite database is deployed with the SQLite queue; other pairs run on PG")
    app = make_app(
        database_url, tmp_path, QUEUE_URL=queue_url, QUEUE_IMMEDIATE=False, STAFF_NOTIFY_EMAILS=[]
    )
    site_key = seed(app)
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.site_key == site_key))
        for i in range(200):
            tickets.open_standard_request(
                site, tickets.Request(**{**standard_fields(), "subject": f"Request {i}"})
            )
    smtp_server.stall(0.01)  # slow each send a little, so the kill lands mid-run
    env = service_env(database_url, queue_url, tmp_path, smtp_server)
    workers = [spawn(env, "worker", log=tmp_path / f"worker{n}.log") for n in (1, 2)]
    try:
        wait_until(lambda: len(smtp_server.messages) >= 150, 60, "the first 150 mails")
        workers[0].send_signal(signal.SIGKILL)
        wait_until(
            lambda: len({m["Message-ID"] for m in smtp_server.messages}) >= 600, 90, "all mail"
        )
        # Rows the killed worker sent but never recorded stay `sending` until their lease
        # runs out and the survivor's re-drive sends them again: wait for that to settle.
        wait_until(lambda: all_sent(app), 60, "every row recorded as sent")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=10)
    pairs = Counter(
        (re.search(r"SUP-\d+", m["Subject"]).group(0), m["To"], m["Message-ID"])
        for m in smtp_server.messages
    )
    per_recipient = Counter((ref, to) for ref, to, _ in pairs)
    assert len(per_recipient) == 600  # 200 tickets x (2 staff + requester)
    assert set(per_recipient.values()) == {1}  # a resend, if any, kept its Message-ID
    # Only the killed worker's batch in flight may go out twice (README: up to ten).
    assert sum(n - 1 for n in pairs.values()) <= outbox.BATCH
    with app.app_context():
        statuses = Counter(db.session.scalars(sa.select(Notification.status)))
    assert statuses == {"sent": 600}
