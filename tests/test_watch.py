"""The uptime watch (issue 18) against real local stand-in sites: checks, incidents, paging.

Real parts: stand-in HTTP servers that answer, fail, drop the expected text or hang; the
real Vonage SDK against its TLS stand-in for pages; aiosmtpd for e-mail; SQLite and
PostgreSQL. Each watch round is one `Watcher.once()`: claim what is due, check, record.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from supportwidget import create_app
from supportwidget.emergencies import paging
from supportwidget.models import Site, SiteCheck, SiteIncident, Staff, Ticket, db, utcnow
from supportwidget.watch import overview
from supportwidget.watch.runner import Watcher, claim

from conftest import form_token, standard_fields
from test_dashboard import PASSWORD, admin_post, login
from vonage_standin import API_KEY, API_SECRET

ALICE, BOB = "447700900001", "447700900002"
SHOP_PAGE = b"<html><h1>Acme Shop</h1><p>Our best lamp. Add to cart</p></html>"
DEFACED_PAGE = b"<html><h1>Hacked by Team Nobody</h1><p>Your security is zero lol</p></html>"


class _StandIn(BaseHTTPRequestHandler):
    """A client's site whose behaviour the test sets: ok, fail, wrong (text), hang."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self.server.hits.append((self.path, time.time()))  # type: ignore[attr-defined]
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "hang":
            time.sleep(30)
            return
        status, body = {
            "ok": (200, SHOP_PAGE),
            "fail": (503, b"Service unavailable"),
            "wrong": (200, b"<html><h1>Acme Shop</h1><p>Database error</p></html>"),
            "defaced": (200, DEFACED_PAGE),
        }[mode]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many checks connect at once
    daemon_threads = True


class StandInSite:
    """A local HTTP server standing in for a client's site."""

    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _StandIn)
        self.server.mode = "ok"  # type: ignore[attr-defined]
        self.server.hits = []  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    @property
    def hits(self) -> list[tuple[str, float]]:
        """Return each request's path and time (Unix seconds)."""
        return list(self.server.hits)  # type: ignore[attr-defined]

    def set(self, mode: str) -> None:
        self.server.mode = mode  # type: ignore[attr-defined]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def standin() -> Iterator[StandInSite]:
    site = StandInSite()
    yield site
    site.close()


@pytest.fixture
def app_config(vonage_standin):
    return dict(
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        SMS_TIMEOUT=2,
        EMERGENCY_REPAGE_INTERVAL=60,
        WATCH_ALLOW_PRIVATE=True,
        WATCH_TIMEOUT=1,
    )


@pytest.fixture
def watched(site, standin):
    """Acme's site, watched at the stand-in's address."""
    site.url = standin.url
    db.session.commit()
    return site


def watch_round(app, *sites: Site) -> int:
    """Make the sites due and run one watch round; return how many sites were checked."""
    for site in sites:
        db.session.execute(sa.update(Site).where(Site.id == site.id).values(watch_next_at=None))
    db.session.commit()
    # A thread of its own: Playwright may hold an event loop on this one (browser tests).
    with ThreadPoolExecutor(1) as pool:
        checked = pool.submit(asyncio.run, Watcher(app, name="test-watcher").once()).result()
    db.session.expire_all()
    return checked


def tickets() -> list[Ticket]:
    return list(db.session.scalars(sa.select(Ticket).order_by(Ticket.id)))


def texts(vonage_standin, number: str) -> list[str]:
    return [sms["text"] for sms in vonage_standin.to(number)]


def test_a_site_that_goes_down_opens_one_emergency_pages_and_recovery_is_noted(
    app, client, watched, standin, vonage_standin, smtp_server
):
    # Up: checked and kept, nothing opened.
    assert watch_round(app, watched) == 1
    [first] = db.session.scalars(sa.select(SiteCheck)).all()
    assert first.ok and first.status == 200 and first.fingerprint
    assert overview.status_of(watched, False) == "up"

    # Down: two failures are not yet an incident; the third (confirmed afresh) is.
    standin.set("fail")
    watch_round(app, watched)
    watch_round(app, watched)
    assert tickets() == [] and vonage_standin.to(ALICE) == []
    watch_round(app, watched)
    [ticket] = tickets()
    assert ticket.is_emergency and ticket.category == "offline" and ticket.opened_by_watch
    assert ticket.billing_consent is False
    assert ticket.site_check["status"] == 503
    [page_alice] = texts(vonage_standin, ALICE)
    [page_bob] = texts(vonage_standin, BOB)
    assert page_alice.startswith(f"EMERGENCY {ticket.reference} offline acme.test")
    assert f"Reply ACK {ticket.id}" in page_bob
    # The client's contact hears the agency is on it (no "your emergency was received").
    mails = smtp_server.wait_for(3)
    contact = next(m for m in mails if m["To"] == "owner@acme.test")
    assert "is down — we are on it" in contact["Subject"]
    told = contact.get_body(("plain",)).get_content()
    assert f"found acme.test not working ({watched.url}): HTTP 503" in told
    assert "you do not need to report it" in told

    # Still down: the same incident, nobody paged again by the watch.
    watch_round(app, watched)
    watch_round(app, watched)
    assert len(tickets()) == 1 and len(vonage_standin.to(ALICE)) == 1

    # The client files "offline" too: it joins the watch's ticket, nobody is paged again.
    path = f"/s/{watched.site_key}/emergency"
    fields = standard_fields(
        category="offline",
        offline_answer="yes",
        subject="Shop is down",
        callback_phone="+44 20 7946 0000",
        billing_consent="y",
    )
    answer = client.post(path, data={**fields, "form_token": form_token(client, path)})
    assert answer.status_code == 200 and ticket.reference in answer.get_data(as_text=True)
    assert len(tickets()) == 1 and len(vonage_standin.to(ALICE)) == 1
    db.session.refresh(ticket)
    assert [e.detail["email"] for e in ticket.events if e.kind == "client_reported"] == [
        "jane@example.com"
    ]

    # Bob acknowledges: the re-pages stop.
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    assert paging.acknowledge(ticket, bob, "sms")
    assert paging.repage_due(now=utcnow() + timedelta(hours=1)) == 0
    assert len(vonage_standin.to(BOB)) == 1

    # Back up: noted on the ticket and told to the staff paged.
    standin.set("ok")
    watch_round(app, watched)
    db.session.refresh(ticket)
    [up] = [e for e in ticket.events if e.kind == "site_up"]
    assert up.detail["text"] == "back up after 1 min"
    assert texts(vonage_standin, ALICE)[-1].startswith(
        f"{ticket.reference} acme.test is back up after 1 min"
    )
    assert "is back up" in texts(vonage_standin, BOB)[-1]
    assert overview.status_of(watched, False) == "up"

    # Flapping: down again folds into the open ticket: a notice, never a second emergency.
    standin.set("fail")
    for _ in range(3):
        watch_round(app, watched)
    assert len(tickets()) == 1
    assert "is down again" in texts(vonage_standin, ALICE)[-1]
    assert not any(t.startswith("EMERGENCY") for t in texts(vonage_standin, ALICE)[1:])
    [incident] = db.session.scalars(sa.select(SiteIncident)).all()
    assert incident.downs == 2 and incident.recovered_at is None


def test_a_resolved_incident_is_over_and_a_new_outage_opens_a_new_ticket(
    app, watched, standin, vonage_standin
):
    standin.set("fail")
    for _ in range(3):
        watch_round(app, watched)
    [first] = tickets()
    first.status = "resolved"
    db.session.commit()
    standin.set("ok")
    watch_round(app, watched)
    assert db.session.scalar(sa.select(SiteIncident)).ended_at is not None
    standin.set("fail")
    for _ in range(3):
        watch_round(app, watched)
    assert [t.id for t in tickets()][-1] != first.id and len(tickets()) == 2


def test_a_page_without_its_expected_text_is_a_broken_emergency(
    app, runner, watched, standin, vonage_standin
):
    result = runner.invoke(args=["site", "watch", "acme.test", "--expect", "Add to cart"])
    assert result.exit_code == 0, result.output
    assert f"watching {standin.url} every 60 s, expecting 'Add to cart'" in result.output
    watch_round(app, watched)
    assert tickets() == []
    standin.set("wrong")
    for _ in range(3):
        watch_round(app, watched)
    [ticket] = tickets()
    assert ticket.category == "broken" and "does not show its expected text" in ticket.subject
    assert texts(vonage_standin, ALICE)[0].startswith(f"EMERGENCY {ticket.reference} broken")


def test_the_site_watch_command_sets_and_refuses(app, runner, watched):
    result = runner.invoke(args=["site", "watch", "acme.test", "--interval", "5"])
    assert result.exit_code != 0 and "10 to 86400 seconds" in result.output
    result = runner.invoke(
        args=["site", "watch", "acme.test", "--url", "https://acme.test/shop", "--interval", "30"]
    )
    assert "watching https://acme.test/shop every 30 s" in result.output
    result = runner.invoke(args=["site", "watch", "acme.test", "--off"])
    assert result.output.strip() == "Site acme.test: not watched."
    db.session.expire_all()
    assert overview.status_of(watched, False) == "off"
    assert watch_round(app, watched) == 0  # not watched: not checked


def test_a_hanging_site_does_not_delay_the_others(app, site, standin):
    hanging = StandInSite()
    hanging.set("hang")
    try:
        site.url = hanging.url
        others = [
            Site(client=site.client, name=f"fast{i}.test", url=standin.url) for i in range(20)
        ]
        db.session.add_all(others)
        db.session.commit()
        started = time.monotonic()
        assert watch_round(app, site, *others) == 21
        took = time.monotonic() - started
    finally:
        hanging.close()
    checks = {c.site_id: c for c in db.session.scalars(sa.select(SiteCheck))}
    assert checks[site.id].error == "no answer" and not checks[site.id].ok
    assert all(checks[o.id].ok for o in others)
    # Every fast site was checked while the hanging one was still hanging (1 s timeout).
    starts = [checks[o.id].checked_at for o in [site, *others]]
    assert max(starts) - min(starts) < timedelta(seconds=0.9)
    assert took < 5


def test_private_addresses_are_not_checked_unless_allowed(
    database_url, tmp_path, smtp_server, standin
):
    from conftest import make_app, running, seed_site

    app = make_app(database_url, tmp_path, WATCH_TIMEOUT=1, **smtp_server.config())
    with running(app):
        site = seed_site()
        site.url = standin.url
        db.session.commit()
        watch_round(app, site)
        [check] = db.session.scalars(sa.select(SiteCheck)).all()
        assert not check.ok and "is not a public address (127.0.0.1)" in check.error


def test_each_due_site_is_claimed_by_one_watcher(app, watched):
    now = utcnow()
    first = claim("watcher-a", 100, now)
    second = claim("watcher-b", 100, now)
    assert [c.site_id for c in first] == [watched.id] and second == []
    # One interval on it falls due again, for whichever watcher asks first.
    assert [c.site_id for c in claim("watcher-b", 100, now + timedelta(seconds=61))] == [watched.id]


def test_a_database_outage_pauses_watching_without_an_incident(tmp_path, caplog):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "QUEUE_URL": "memory://",
        }
    )
    caplog.set_level(logging.ERROR)
    watcher = Watcher(app, name="cut-off")
    # On a thread of its own: a browser test earlier in the session may leave a loop running.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, watcher.once()).result() == 0
    assert watcher.paused
    assert "uptime watch paused" in caplog.text


def test_the_site_admin_page_sets_the_watch_and_refuses_bad_values(client, watched):
    for member in db.session.scalars(sa.select(Staff)):
        member.set_password(PASSWORD)
    db.session.commit()
    login(client, "alice@agency.test")
    page = client.get("/dashboard/admin/sites").get_data(as_text=True)
    assert 'name="watch_expect"' in page and 'name="watch_enabled" value="y" checked' in page
    fields = {"url": watched.url, "watch_form": "1", "watch_enabled": "y"}
    bad = admin_post(client, "sites", f"sites/{watched.id}", **fields, watch_interval="3")
    assert bad.status_code == 422 and "10 to 86400 seconds" in bad.get_data(as_text=True)
    ok = admin_post(
        client,
        "sites",
        f"sites/{watched.id}",
        **fields,
        watch_expect="Add to cart",
        watch_interval="120",
        watch_url="",
    )
    assert ok.status_code == 303
    db.session.expire_all()
    assert (watched.watch_expect, watched.watch_interval, watched.watched_url) == (
        "Add to cart",
        120,
        watched.url,
    )
    off = admin_post(client, "sites", f"sites/{watched.id}", url=watched.url, watch_form="1")
    assert off.status_code == 303
    db.session.expire_all()
    assert not watched.watch_enabled
