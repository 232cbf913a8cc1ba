"""One emergency from the form to resolution, told the same truthful way at every step (issue 15).

Real parts throughout: the hosted form and dashboard through Flask's client, e-mail through
aiosmtpd, SMS and phone calls through the real Vonage SDK against the TLS stand-in, the
voice callbacks signed as Vonage signs them, and the client's "offline" site a real port
that refuses connections.
"""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import pytest
import sqlalchemy as sa

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Notification, SlaPlan, Staff, Ticket, db
from supportwidget.notify.gsm import gsm_length
from supportwidget.platform import tokens

from conftest import form_token, standard_fields
from test_dashboard import PASSWORD, login, post_action
from vonage_standin import API_KEY, API_SECRET, APPLICATION_ID, application_keys

SIG_SECRET = "voice-signature-secret-32-bytes-long"
ALICE, BOB = "447700900001", "447700900002"


def refusing_url() -> str:
    """Return the URL of a local port nobody listens on: a site that is really down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


@pytest.fixture
def app_config(vonage_standin, tmp_path):
    key = tmp_path / "voice-application.key"
    key.write_text(application_keys()[0])
    return dict(
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        VONAGE_APPLICATION_ID=APPLICATION_ID,
        VONAGE_PRIVATE_KEY=str(key),  # a path; the PEM itself works too
        VONAGE_API_HOST=vonage_standin.host,
        VONAGE_SIGNATURE_SECRET=SIG_SECRET,
        SMS_TIMEOUT=2,
        EMERGENCY_REPAGE_INTERVAL=60,
        EMERGENCY_CALL_AFTER=1,
        WATCH_ALLOW_PRIVATE=True,
    )


@pytest.fixture
def gold_site(site):
    """Acme on a Gold plan whose emergency response is 30 minutes; its site is down."""
    plan = SlaPlan(
        name="Gold",
        timezone="Europe/London",
        hours="mon-fri 09:00-17:30",
        first_response_minutes=240,
        resolution_minutes=960,
        emergency_response_minutes=30,
    )
    site.client.sla_plan = plan
    site.url = refusing_url()
    for member in db.session.scalars(sa.select(Staff)):
        member.set_password(PASSWORD)
    db.session.commit()
    return site


def visible(response) -> str:
    """Return a page's text without tags, whitespace folded."""
    return " ".join(re.sub(r"<[^>]*>", " ", response.get_data(as_text=True)).split())


def plain(message) -> str:
    return message.get_body(("plain",)).get_content()


def send(client, call, url, **body):
    """Send the callback Vonage would send for a call, signed; return the response."""
    path, payload, headers = call.callback(url, SIG_SECRET, **body)
    return client.post(path, data=payload, headers=headers)


def test_one_emergency_from_the_form_to_resolution(
    app, client, gold_site, smtp_server, vonage_standin
):
    site = gold_site
    path = f"/s/{site.site_key}/emergency"

    # 1. The form asks the offline question before it pages anyone.
    form = visible(client.get(path))
    assert "Does your site fail to load for you now?" in form
    fields = standard_fields(
        subject="Shop shows a blank page",
        category="offline",
        offline_answer="yes",
        callback_phone="+44 20 7946 0000",
    )
    answer = client.post(path, data={**fields, "form_token": form_token(client, path)})
    assert answer.status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    ref = ticket.reference

    # 2. The answer page: where it stands, once, and the plan's promise; the widget's words.
    text = visible(answer)
    assert text.count("being paged") == 1
    assert f"Emergency {ref}: the on-call team is being paged." in text
    assert (
        "Your Gold plan: someone from our on-call team will call you back within 30 minutes."
        in text
    )
    assert f'data-summary="Emergency {ref}: the on-call team is being paged."' in answer.text

    # 3. Our check went straight through (the site is really down) and is on the page.
    assert ticket.site_check["ok"] is False and ticket.site_check["error"] == "connection refused"
    [page_alice] = vonage_standin.to(ALICE)
    [page_bob] = vonage_standin.to(BOB)
    assert page_alice["text"].startswith(
        f"EMERGENCY {ref} offline acme.test: Shop shows a blank page Gold 30min check: refused 0."
    )
    assert re.search(rf"Reply ACK {ticket.id} or http://support\.test/a/\S+$", page_alice["text"])
    assert gsm_length(page_alice["text"]) <= 160 and gsm_length(page_bob["text"]) <= 160

    # 4. Staff e-mail: the state, the plan and its target, the answer, our check.
    mails = smtp_server.wait_for(4)
    staff_mail = plain(next(m for m in mails if m["To"] == "alice@agency.test"))
    assert "Emergency: paging, round 1: nobody has acknowledged yet" in staff_mail
    due = (ticket.created_at + timedelta(minutes=30)).strftime("%H:%M UTC")
    assert f"Terms: Gold plan: emergency response within 30 min (by {due})" in staff_mail
    assert "Does your site fail to load for you now? Yes, it does not load for me" in staff_mail
    assert f"Our check of {site.url}: connection refused after" in staff_mail
    assert "No SLA" not in staff_mail

    # 5. The requester's confirmation says the same, once.
    confirmation = plain(next(m for m in mails if m["To"] == "jane@example.com"))
    assert f"Emergency {ref}: the on-call team is being paged." in confirmation
    assert confirmation.count("being paged") == 1
    assert (
        "What happens next: Your Gold plan: someone from our on-call team will call you"
        in confirmation
    )

    # 6. Unacknowledged after a round: the 2nd page says so, and both are phoned.
    assert emergencies.repage_due(now=ticket.created_at + timedelta(seconds=61)) == 1
    second = vonage_standin.to(ALICE)[-1]["text"]
    assert second.startswith(f"2nd page - {ref} still unacknowledged: offline")
    assert (
        f"Reply ACK {ticket.id} or http://support.test/a/" in second and gsm_length(second) <= 160
    )
    [call_alice] = vonage_standin.calls_to(ALICE)
    [call_bob] = vonage_standin.calls_to(BOB)
    assert call_bob.request["answer_method"] == "POST" and call_bob.request["random_from_number"]

    # 7. Bob picks up: the call names the client, the site and the category, and asks for 1.
    spoken = send(client, call_bob, call_bob.answer_url)
    assert spoken.status_code == 200
    talk, keypad = spoken.get_json()
    assert talk["action"] == "talk" and keypad["action"] == "input"
    assert "Acme Shop reports that their website is offline: acme.test" in talk["text"]
    assert "Press 1 to acknowledge" in talk["text"]
    assert keypad["dtmf"]["maxDigits"] == 1
    assert send(client, call_bob, call_bob.event_url, status="answered").status_code == 204
    assert send(client, call_alice, call_alice.event_url, status="busy").status_code == 204

    # 8. Bob presses 1: acknowledged exactly like "ACK"; Alice is told; nobody is paged again.
    pressed = send(
        client, call_bob, keypad["eventUrl"][0], dtmf={"digits": "1", "timed_out": False}
    )
    [thanks] = pressed.get_json()
    assert thanks["text"].startswith(f"Thank you, Bob. You have acknowledged ticket {ticket.id}")
    db.session.refresh(ticket)
    assert ticket.acknowledged_by.name == "Bob"
    assert vonage_standin.to(ALICE)[-1]["text"] == f"{ref} acknowledged by Bob. No action needed."
    assert len(vonage_standin.to(BOB)) == 2  # his two pages, no notice of his own acknowledgement
    pages_before = len(vonage_standin.requests)
    assert emergencies.repage_due(now=ticket.created_at + timedelta(hours=2)) == 0
    assert len(vonage_standin.requests) == pages_before and len(vonage_standin.calls) == 2
    taken = plain(smtp_server.wait_for(5)[-1])
    assert re.search(
        rf"Emergency {ref}: Bob from our on-call team took it at \d\d:\d\d Europe/London", taken
    )

    # 9. Alice's call, answered late, says it is taken; her link shows who took it, no button.
    late = send(client, call_alice, call_alice.answer_url)
    [said] = late.get_json()
    already = f"Ticket {ticket.id} for Acme Shop was already acknowledged by Bob."
    assert said["text"] == f"{already} No action is needed. Goodbye."
    link = re.search(r"http://support\.test(/a/\S+)", page_alice["text"]).group(1)
    ack_page = visible(client.get(link))
    assert f"{ref} was acknowledged by Bob at" in ack_page and "I'm on it" not in ack_page

    # 10. The dashboard: one state, the target met, nothing breached, the calls on the timeline.
    staff = app.test_client()
    login(staff, "alice@agency.test")
    dashboard = visible(staff.get(f"/dashboard/tickets/{ref}"))
    assert "acknowledged by Bob at" in dashboard and "30-min target met" in dashboard
    assert "breached" not in dashboard and "overdue" not in dashboard
    assert "Call to Bob: answered" in dashboard and "Call to Alice: busy" in dashboard
    assert "phoned: Alice, Bob" in dashboard

    # 11. The status page: acknowledged, never "being paged" any more.
    status_url = f"/t/{tokens.status_token(ticket.id)}"
    status = visible(client.get(status_url))
    assert f"Emergency {ref}: Bob from our on-call team took it at" in status
    assert "being paged" not in status

    # 12. Alice resolves it: Bob hears it is over; the requester's pages say so.
    assert post_action(staff, ticket, "status", status="resolved").status_code == 303
    assert vonage_standin.to(BOB)[-1]["text"] == f"{ref} resolved by Alice. No action needed."
    status = visible(client.get(status_url))
    assert re.search(rf"{ref} was resolved at \d\d:\d\d Europe/London\.", status)
    assert "within 30 minutes" not in status
    resolved_mail = plain(smtp_server.wait_for(6)[-1])
    assert "is now: Resolved" in resolved_mail
    calls = db.session.scalars(sa.select(Notification).where(Notification.channel == "voice")).all()
    assert {(c.recipient, c.status, c.delivery_status) for c in calls} == {
        ("+" + ALICE, "sent", "busy"),
        ("+" + BOB, "sent", "answered"),
    }
