"""Hacked signals and expiring certificates (issue 18) against real stand-in sites.

Real parts: the stand-in HTTP site of test_watch (its homepage switched to a defaced one),
a real TLS stand-in whose certificate (trustme) expires in 5 days, heartbeats signed like
the plugin signs them, the Vonage stand-in for pages, aiosmtpd for e-mail, SQLite and
PostgreSQL.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa
import test_watch
import trustme
from test_heartbeat import MD5_A, beat, changed, report
from test_watch import ALICE, BOB, _StandIn, texts, tickets, watch_round

from supportwidget.models import Notification, Site, SiteCheck, Staff, db
from supportwidget.watch import fetch, signals

from test_dashboard import PASSWORD, login

# test_watch's fixtures: its app settings and the stand-in site Acme is watched at.
app_config, standin, watched = test_watch.app_config, test_watch.standin, test_watch.watched

HACKED = report(core=changed(("wp-includes/version.php", MD5_A)))


def pages(vonage_standin) -> list[str]:
    """Return the emergency pages sent to the on-call staff (Alice) so far."""
    return [t for t in texts(vonage_standin, ALICE) if t.startswith("EMERGENCY")]


def test_a_changed_core_file_with_an_unchanged_homepage_stays_a_standard_ticket(
    app, client, watched, standin, vonage_standin
):
    watch_round(app, watched)
    assert beat(client, watched, HACKED).status_code == 200
    for _ in range(3):
        watch_round(app, watched)
        beat(client, watched, HACKED)
    [ticket] = tickets()
    assert ticket.kind == "standard" and ticket.subject.startswith("Possibly hacked")
    assert not ticket.opened_by_watch and pages(vonage_standin) == []


def test_a_changed_core_file_then_a_defaced_homepage_is_one_hacked_emergency(
    app, client, watched, standin, vonage_standin, smtp_server
):
    watch_round(app, watched)
    watch_round(app, watched)
    beat(client, watched, HACKED)
    [ticket] = tickets()
    assert ticket.kind == "standard"

    standin.set("defaced")
    for _ in range(3):
        watch_round(app, watched)
        beat(client, watched, HACKED)
    [ticket] = tickets()
    assert ticket.is_emergency and ticket.category == "hacked"
    assert ticket.opened_by_watch and ticket.billing_consent is False
    [escalated] = [e for e in ticket.events if e.kind == "escalated"]
    first = db.session.scalars(sa.select(SiteCheck).order_by(SiteCheck.checked_at)).first()
    assert escalated.detail["text"] == (
        f"homepage changed 100 % since the last good check at "
        f"{first.checked_at.replace(tzinfo=UTC):%Y-%m-%d %H:%M} UTC"
    )
    # The on-call team (Alice and Bob) paged once each, as for a client's emergency.
    [page] = pages(vonage_standin)
    assert page.startswith(f"EMERGENCY {ticket.reference} hacked acme.test")
    assert f"Reply ACK {ticket.id}" in page and len(texts(vonage_standin, BOB)) == 1
    assert ticket.next_page_at is not None
    purposes = db.session.scalars(
        sa.select(Notification.purpose).where(Notification.ticket_id == ticket.id)
    ).all()
    assert "staff-emergency" in purposes and "watch-contact" not in purposes

    # Staff read on the ticket's timeline what made it an emergency.
    for member in db.session.scalars(sa.select(Staff)):
        member.set_password(PASSWORD)
    db.session.commit()
    login(client, "alice@agency.test")
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert 'class="badge emergency">EMERGENCY hacked</span>' in page
    said = escalated.detail["text"]
    assert f"Escalated to an emergency (hacked)</strong>: {said}" in page


def test_a_defaced_homepage_then_the_heartbeat_is_one_hacked_emergency(
    app, client, watched, standin, vonage_standin
):
    watch_round(app, watched)
    standin.set("defaced")
    watch_round(app, watched)
    assert tickets() == []  # a changed homepage alone is no ticket (sites change)
    answer = beat(client, watched, HACKED)
    assert answer.status_code == 200
    [ticket] = tickets()
    assert answer.json["ticket"] == ticket.reference
    assert ticket.is_emergency and ticket.category == "hacked"
    assert [e.detail["text"][:26] for e in ticket.events if e.kind == "escalated"] == [
        "homepage changed 100 % sin"
    ]
    beat(client, watched, HACKED)
    watch_round(app, watched)
    assert len(tickets()) == 1 and len(pages(vonage_standin)) == 1


def test_the_change_is_measured_on_words_not_bytes():
    # A homepage of a few paragraphs; today's offer changes, a script is added.
    words = b" ".join(b"lamps chairs tables sofas rugs shelves desks beds".split() * 12)
    page = b"<html><body><h1>Acme Shop</h1><p>" + words + b" offer of the day 20 off</p>"
    edited = page.replace(b"20 off", b"35 off") + b"<script>var t = 12;</script>"
    same = fetch.similarity(fetch.fingerprint(page), fetch.fingerprint(edited))
    gone = fetch.similarity(fetch.fingerprint(page), fetch.fingerprint(b"<h1>Hacked</h1>"))
    assert 1 - same < signals.CHANGED_BEYOND <= 1 - gone


class TLSStandIn:
    """A local HTTPS site whose certificate, from a test CA, expires on `not_after`."""

    def __init__(self, ca: trustme.CA, not_after: datetime) -> None:
        cert = ca.issue_cert("127.0.0.1", not_after=not_after)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
        self.server.daemon_threads = True
        self.server.mode = "ok"  # type: ignore[attr-defined]
        self.server.hits = []  # type: ignore[attr-defined]
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca(monkeypatch) -> trustme.CA:
    """A test CA the watch's HTTP client trusts (as it trusts the public CAs)."""
    authority = trustme.CA()
    real = fetch.new_client

    def trusting(max_connections: int = 1000) -> httpx.AsyncClient:
        client = real(max_connections)
        context = ssl.create_default_context()
        authority.configure_trust(context)
        return httpx.AsyncClient(
            verify=context,
            follow_redirects=False,
            headers=client.headers,
            timeout=client.timeout,
        )

    monkeypatch.setattr(fetch, "new_client", trusting)
    return authority


@pytest.fixture
def expiring(ca) -> Iterator[TLSStandIn]:
    server = TLSStandIn(ca, datetime.now(UTC).replace(microsecond=0) + timedelta(days=5, hours=1))
    yield server
    server.close()


def test_a_certificate_expiring_soon_opens_one_ticket_per_certificate(
    app, site, ca, expiring, smtp_server
):
    site.url = expiring.url
    db.session.commit()
    for _ in range(3):
        watch_round(app, site)
    checks = db.session.scalars(sa.select(SiteCheck)).all()
    assert len(checks) == 3 and all(c.ok and c.tls_days == 5 for c in checks)
    [ticket] = tickets()
    assert ticket.kind == "standard" and ticket.site_id == site.id
    expires = ticket.page_meta["tls_expires"][:16].replace("T", " ")
    assert ticket.subject == f"TLS certificate of acme.test expires in 5 days ({expires[:10]})"
    assert f"expires in 5 days, on {expires} UTC" in ticket.description
    mails = smtp_server.wait_for(3)
    assert any("TLS certificate of acme.test expires in 5 days" in m["Subject"] for m in mails)

    # Renewed, but again with a short certificate: that one is warned about too, once.
    renewed = TLSStandIn(ca, datetime.now(UTC).replace(microsecond=0) + timedelta(days=9, hours=1))
    try:
        db.session.execute(sa.update(Site).where(Site.id == site.id).values(url=renewed.url))
        db.session.commit()
        watch_round(app, site)
        watch_round(app, site)
    finally:
        renewed.close()
    assert [t.subject[:45] for t in tickets()] == [
        "TLS certificate of acme.test expires in 5 day",
        "TLS certificate of acme.test expires in 9 day",
    ]


def test_a_certificate_with_weeks_left_opens_nothing(app, site, ca):
    server = TLSStandIn(ca, datetime.now(UTC) + timedelta(days=60))
    try:
        site.url = server.url
        db.session.commit()
        watch_round(app, site)
    finally:
        server.close()
    [check] = db.session.scalars(sa.select(SiteCheck)).all()
    assert check.ok and check.tls_days == 59
    assert tickets() == []
