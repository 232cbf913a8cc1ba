"""Security by default: headers, rate limits with a useful 429, tenant isolation."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from supportwidget.models import Client, Site, Ticket, db

from conftest import form_token, standard_fields


def test_every_page_sends_security_headers(client, site):
    for path in ("/healthz", f"/s/{site.site_key}", "/t/nothing", "/widget.js"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert "Content-Security-Policy" in headers, path
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_hsts_when_served_over_https(app, client, site):
    app.config["PUBLIC_URL"] = "https://support.example"
    assert "max-age=" in client.get("/healthz").headers["Strict-Transport-Security"]


def test_pages_other_than_the_forms_cannot_be_framed(client, site):
    assert "frame-ancestors 'none'" in client.get("/t/x").headers["Content-Security-Policy"]
    assert client.get("/t/x").headers["X-Frame-Options"] == "DENY"


def emergency(client, site):
    path = f"/s/{site.site_key}/emergency"
    data = standard_fields(category="offline", offline_answer="yes", billing_consent="y")
    data["form_token"] = form_token(client, path)
    return client.post(path, data=data)


@pytest.fixture
def app_config():
    """Rate limits on, as in production."""
    return dict(
        RATELIMIT_ENABLED=True, AGENCY_PHONE="+44 20 7946 0000", AGENCY_EMAIL="help@agency.test"
    )


def test_emergency_flood_is_refused_with_contacts_and_staff_told_once(client, site, smtp_server):
    assert [emergency(client, site).status_code for _ in range(3)] == [200, 200, 200]
    refused = emergency(client, site)
    assert refused.status_code == 429
    text = refused.get_data(as_text=True)
    assert "+44 20 7946 0000" in text and "help@agency.test" in text
    assert emergency(client, site).status_code == 429
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 3
    floods = [m for m in smtp_server.messages if "rate limit reached" in m["Subject"]]
    assert sorted(m["To"] for m in floods) == [
        "alice@agency.test",
        "bob@agency.test",
        "inbox@agency.test",
    ]


def test_status_links_are_per_ticket_and_unguessable(client, site):
    other_client = Client(name="Other", emails=["o@other.test"])
    other = Site(
        client=other_client, name="other.test", url="https://other.test", allowed_origins=[]
    )
    db.session.add_all([other_client, other])
    db.session.commit()
    links = []
    for s in (site, other):
        data = {
            **standard_fields(subject=f"Secret of {s.name}"),
            "form_token": form_token(client, f"/s/{s.site_key}"),
        }
        page = client.post(f"/s/{s.site_key}", data=data).get_data(as_text=True)
        links.append(re.search(r'href="(/t/[^"]+)"', page).group(1))
    first = client.get(links[0]).get_data(as_text=True)
    assert "Secret of acme.test" in first and "Secret of other.test" not in first
    assert len(links[0]) > 10 and links[0] != links[1]
    # A token is a signature, not a counter: neighbours are not reachable.
    assert client.get("/t/2").status_code == 404
