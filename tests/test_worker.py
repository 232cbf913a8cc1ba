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

from supportwidget.models import Client, Heartbeat, Notification, Site, Staff, db
from supportwidget.notify import outbox
from supportwidget.tickets import filing as tickets
from supportwidget.worker import Workers

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
        wait_until(lambda: get(base + "/healthz")[0] == 200, 60, "a healthy service")
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


def test_staff_hear_of_a_ticket_within_two_seconds_after_a_quiet_spell(tmp_path, smtp_server):
    # On the embedded SQLite queue an idle worker polls, backing off between looks. After a
    # quiet minute Huey's default had it look only every 10 s, so a lone ticket reached
    # staff up to 10 s late; the mail lane's poll caps that wait.
    queue = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    app = make_app(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        tmp_path,
        QUEUE_URL=queue,
        QUEUE_IMMEDIATE=False,
        STAFF_NOTIFY_EMAILS=[],
        **smtp_server.config(),
    )
    site_key = seed(app)
    workers = Workers(app)
    workers.start()
    try:
        # A quiet spell: every idle thread backed off as far as its lane lets it.
        for consumer in workers.consumers:
            for worker, _ in consumer.worker_threads:
                worker.delay = worker.max_delay
        time.sleep(1.0)  # let each thread start such a wait (not an assertion)
        client = app.test_client()
        form = client.get(f"/s/{site_key}").get_data(as_text=True)
        token = re.search(r'name="form_token" type="hidden" value="([^"]+)"', form).group(1)
        answered = time.monotonic()
        page = client.post(f"/s/{site_key}", data={**standard_fields(), "form_token": token})
        assert page.status_code == 200
        mails = smtp_server.wait_for(3, timeout=15)
        heard = time.monotonic() - answered
    finally:
        workers.stop()
    assert sorted(m["To"] for m in mails)[:2] == ["alice@agency.test", "bob@agency.test"]
    assert heard <= 2.0, f"staff heard {heard:.1f} s after the answer page"


def children(pid: int) -> list[int]:
    """Return the pids of a process's children (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def served(tmp_path, smtp_server):
    """Start `serve` on SQLite and its queue; yield (process, base URL, app, site key)."""
    database_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    queue_url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    app = make_app(
        database_url, tmp_path, QUEUE_URL=queue_url, QUEUE_IMMEDIATE=False, STAFF_NOTIFY_EMAILS=[]
    )
    site_key = seed(app)
    port = free_port()
    env = service_env(database_url, queue_url, tmp_path, smtp_server)
    server = spawn(env, "serve", "--port", str(port), log=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(base + "/healthz")[0] == 200, 60, "a healthy service")
        yield server, base, app, site_key
    finally:
        for pid in children(server.pid):
            os.kill(pid, signal.SIGKILL)
        server.kill()
        server.wait(timeout=10)


@pytest.mark.slow  # a `serve` process of its own: seconds to start
def test_serve_runs_its_worker_in_a_process_of_its_own(served):
    server, base, app, _ = served
    [worker] = children(server.pid)
    # The beating worker is that child: web requests and sends use separate interpreters.
    with app.app_context():
        rows = db.session.execute(sa.select(Heartbeat.name, Heartbeat.holder)).all()
        db.session.remove()
    beating = {value for row in rows for value in row if value}
    assert any(name.endswith(f":{worker}") for name in beating), beating
    assert not any(name.endswith(f":{server.pid}") for name in beating)


@pytest.mark.slow  # a `serve` process of its own: seconds to start
def test_sigterm_stops_serve_and_its_worker(served, tmp_path):
    server, *_ = served
    [worker] = children(server.pid)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=40) == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert not alive(worker)


@pytest.mark.slow  # a `serve` process of its own: seconds to start
def test_serve_stops_when_its_worker_dies(served, tmp_path):
    server, base, *_ = served
    [worker] = children(server.pid)
    os.kill(worker, signal.SIGKILL)
    # Not left answering requests whose mail nobody sends: it exits and says why.
    assert server.wait(timeout=30) != 0
    assert "the worker process exited" in (tmp_path / "serve.log").read_text()


@pytest.mark.slow  # a `serve` process of its own: seconds to start
def test_the_worker_of_a_killed_serve_does_not_linger(served):
    server, *_ = served
    [worker] = children(server.pid)
    server.kill()  # no chance to stop its worker
    server.wait(timeout=10)
    wait_until(lambda: not alive(worker), 15, "the orphaned worker to stop")
