"""Emergencies (issue 15): friction proportional to the claim, the rate in the client's currency,
everyone paged told to stand down, and acknowledgement meeting or missing the plan's target."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Client, Site, SlaPlan, Staff, Ticket, db
from supportwidget.sla import deadlines
from supportwidget.tickets import actions as updates

from conftest import form_token, standard_fields
from test_dashboard import PASSWORD, login
from vonage_standin import API_KEY, API_SECRET

ALICE, BOB = "447700900001", "447700900002"


@pytest.fixture
def app_config(vonage_standin):
    return dict(
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        SMS_TIMEOUT=1,
        EMERGENCY_REPAGE_INTERVAL=60,
        WATCH_ALLOW_PRIVATE=True,
    )


class _Up(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    def do_GET(self) -> None:
        body = b"<h1>Acme shop</h1>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site_up(site) -> Iterator:
    """The client's site answers: an "offline" claim needs a second look."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Up)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}/"
    site.client.hourly_rate = Decimal("120")
    db.session.commit()
    yield site
    server.shutdown()
    server.server_close()


def post(client, site, **fields):
    path = f"/s/{site.site_key}/emergency"
    data = standard_fields(billing_consent="y", **fields)
    data.setdefault("form_token", form_token(client, path))
    return client.post(path, data=data)


def text(response) -> str:
    return " ".join(re.sub(r"<[^>]*>", " ", response.get_data(as_text=True)).split())


@pytest.mark.parametrize(
    "category, question",
    [
        ("offline", "Does your site fail to load for you now?"),
        ("hacked", "What did you see?"),
        ("broken", "What can your customers not do?"),
    ],
)
def test_each_category_asks_its_question_before_anyone_is_paged(
    client, site, vonage_standin, category, question
):
    response = post(client, site, category=category)
    assert response.status_code == 422
    assert question in text(response)
    assert "Please answer this question: it tells the on-call team where to start." in text(
        response
    )
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    assert vonage_standin.requests == []


def test_the_answer_is_stored_and_shown_to_staff(client, site, smtp_server, vonage_standin):
    answer = "Checkout says 'payment failed' for every card"
    assert post(client, site, category="broken", broken_answer=answer).status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.category_answer == answer
    staff_mail = next(m for m in smtp_server.wait_for(4) if m["To"] == "bob@agency.test")
    body = staff_mail.get_body(("plain",)).get_content()
    assert f"What can your customers not do? {answer}" in body
    assert "Terms: no SLA and no hourly rate agreed" in body


def test_an_offline_site_that_loads_asks_first_and_keeps_everything_typed(
    client, site_up, vonage_standin
):
    fields = dict(category="offline", offline_answer="yes", subject="Shop is down for me")
    response = post(client, site_up, **fields)
    assert response.status_code == 409
    page = text(response)
    assert "We could load your site just now — still file an emergency?" in page
    assert f"We opened {site_up.url} a moment ago" in page
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    assert vonage_standin.requests == []  # nobody paged yet
    markup = response.get_data(as_text=True)
    assert 'value="Shop is down for me"' in markup  # kept, in the form and in the way out
    assert markup.count('name="confirmed" value="1"') == 1
    # Still down for them: they confirm, and the team is paged with our check attached.
    confirmed = post(client, site_up, **fields, confirmed="1")
    assert confirmed.status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.site_check["status"] == 200 and ticket.site_check["ok"] is True
    assert "check: 200 in 0." in vonage_standin.to(ALICE)[0]["text"]


def test_the_way_out_of_the_confirm_step_files_a_normal_request(client, site_up, vonage_standin):
    response = post(client, site_up, category="offline", offline_answer="no")
    way_out = re.search(
        r'<form method="post" action="(/s/[^"]+)">(.*?)</form>',
        response.get_data(as_text=True),
        re.S,
    )
    kept = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', way_out.group(2)))
    assert kept["subject"] == standard_fields()["subject"]
    answer = client.post(way_out.group(1), data=kept)
    assert answer.status_code == 200 and "Thank you — we have your request" in text(answer)
    assert db.session.scalar(sa.select(Ticket)).kind == "standard"
    assert vonage_standin.requests == []


def test_the_rate_is_shown_with_its_currency_beside_an_inline_consent(client, site):
    site.client.hourly_rate = Decimal("120")
    db.session.commit()
    page = client.get(f"/s/{site.site_key}/emergency").get_data(as_text=True)
    assert re.search(
        r'<p class="rate" id="billing-hint">.*<strong>€120\.00 per hour</strong>', page, re.S
    )
    # The checkbox and its label share one line (a flex row), the rate is not a grey hint.
    inline = r'<div class="choice">\s*<input[^>]*id="billing_consent"[^>]*>\s*<label for="billing_'
    assert re.search(inline, page)
    french = client.get(f"/s/{site.site_key}/emergency?locale=fr").get_data(as_text=True)
    assert "120,00\xa0€" in french


def test_a_downgrade_tells_everyone_paged_to_stand_down(
    app, client, site, smtp_server, vonage_standin
):
    assert post(client, site, category="hacked", hacked_answer="A red page").status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    alice = db.session.scalar(sa.select(Staff).where(Staff.name == "Alice"))
    updates.triage(ticket, alice, "downgrade", "Only the font looks different")
    assert vonage_standin.to(BOB)[-1]["text"] == (
        f"Stand down: {ticket.reference} downgraded by Alice. No action needed."
    )
    assert len(vonage_standin.to(ALICE)) == 1  # the one who downgraded needs no notice
    assert emergencies.repage_due(now=ticket.created_at + timedelta(hours=1)) == 0
    bob_link = re.search(r"http://support\.test(/a/\S+)", vonage_standin.to(BOB)[0]["text"])
    page = text(client.get(bob_link.group(1)))
    assert f"{ticket.reference} was downgraded by Alice at" in page
    assert "Only the font looks different" in page and "I'm on it" not in page
    assert "being paged" not in page


def test_the_downgrade_e_mail_gives_the_place_staff_see(
    app, client, site, gold_neighbour, smtp_server, vonage_standin
):
    # Queued before it: three requests without an SLA, and two of a Gold client due sooner.
    for target, n in [(site, 0), (site, 1), (site, 2), (gold_neighbour, 3), (gold_neighbour, 4)]:
        path = f"/s/{target.site_key}"
        data = standard_fields(subject=f"Request {n}", form_token=form_token(client, path))
        assert client.post(path, data=data).status_code == 200
    assert post(client, site, category="broken", broken_answer="No checkout").status_code == 200
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.kind == "emergency"))
    alice = db.session.scalar(sa.select(Staff).where(Staff.name == "Alice"))
    alice.set_password(PASSWORD)
    db.session.commit()
    updates.triage(ticket, alice, "downgrade", "The font is not an emergency")
    mail = next(
        m for m in smtp_server.wait_for(15) if "Handled as a standard request" in m["Subject"]
    )
    place = re.search(r"number (\d+) in the queue", mail.get_body(("plain",)).get_content())
    staff = app.test_client()
    login(staff, "alice@agency.test")
    queue = staff.get("/dashboard/").get_data(as_text=True)
    listed = list(dict.fromkeys(re.findall(r'href="/dashboard/tickets/(SUP-\d+)"', queue)))
    assert int(place.group(1)) == listed.index(ticket.reference) + 1 == 6


@pytest.fixture
def gold_neighbour(site):
    """Another client's site, on a plan whose first response is due within 4 hours, any day."""
    neighbour = Site(
        client=Client(
            name="Bakery",
            emails=["owner@bakery.test"],
            sla_plan=SlaPlan(
                name="Gold 24/7",
                timezone="UTC",
                hours="mon-sun 00:00-24:00",
                first_response_minutes=240,
                resolution_minutes=960,
            ),
        ),
        name="bakery.test",
        url="https://bakery.test",
    )
    db.session.add(neighbour)
    db.session.commit()
    return neighbour


@pytest.fixture
def gold(site):
    site.client.sla_plan = SlaPlan(
        name="Gold",
        timezone="UTC",
        hours="mon-sun 00:00-24:00",
        first_response_minutes=240,
        resolution_minutes=960,
        emergency_response_minutes=30,
    )
    db.session.commit()
    return site


def test_acknowledging_in_time_meets_the_emergency_target(client, gold, vonage_standin):
    assert post(client, gold, category="hacked", hacked_answer="Defaced").status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    assert emergencies.acknowledge(ticket, bob, via="sms")
    half_an_hour_later = ticket.created_at + timedelta(minutes=31)
    assert deadlines.next_deadline(ticket, half_an_hour_later) is None  # met: nothing due
    assert ticket.breached == [] and ticket.first_responded_at == ticket.acknowledged_at


def test_acknowledging_late_breaches_the_emergency_target(client, gold, vonage_standin):
    assert post(client, gold, category="hacked", hacked_answer="Defaced").status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    due = deadlines.next_deadline(ticket, ticket.created_at + timedelta(minutes=31))
    assert (due.label, due.state) == ("Emergency response", "breached")
    ticket.created_at -= timedelta(minutes=40)  # filed 40 minutes ago, due 10 minutes ago
    ticket.first_response_due -= timedelta(minutes=40)
    db.session.commit()
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    assert emergencies.acknowledge(ticket, bob, via="link")
    assert ticket.breached == ["first_response"]
    assert [e.kind for e in ticket.events].count("sla_breached") == 1


def test_the_state_and_the_promise_in_the_requester_s_language(client, gold, vonage_standin):
    path = f"/s/{gold.site_key}/emergency?locale=fr"
    data = standard_fields(category="hacked", hacked_answer="Une page noire")
    response = client.post(path, data={**data, "form_token": form_token(client, path)})
    page = html.unescape(text(response))
    assert "Urgence SUP-1 : l'équipe d'astreinte est en train d'être alertée." in page
    assert "Votre formule Gold : quelqu'un de notre équipe d'astreinte reviendra vers vous" in page
    assert "dans les 30 minutes" in page
