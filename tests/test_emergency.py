"""Emergencies: the form, SMS pages through the real Vonage SDK, acknowledgement, re-paging."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from supportwidget.emergencies import links
from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Notification, Staff, Ticket, db, utcnow
from supportwidget.notify import outbox
from supportwidget.notify.gsm import gsm_length, is_gsm, sms_text

from conftest import form_token, make_app, standard_fields, vonage_signed
from vonage_standin import API_KEY, API_SECRET

SIG_SECRET = "webhook-secret"
ALICE, BOB, CAROL = "447700900001", "447700900002", "447700900003"


@pytest.fixture
def app_config(vonage_standin):
    """Page through the Vonage stand-in (mail goes to aiosmtpd, as everywhere)."""
    return dict(
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        SMS_TIMEOUT=1,
        VONAGE_SIGNATURE_SECRET=SIG_SECRET,
        VONAGE_SIGNATURE_METHOD="md5hash",
        EMERGENCY_REPAGE_INTERVAL=60,
        EMERGENCY_REPAGE_LIMIT=2,
    )


@pytest.fixture
def site(site):
    """The shared seed (Alice and Bob on call), plus a rate for emergencies and Carol off call."""
    site.client.hourly_rate = Decimal("150")
    db.session.add(Staff(name="Carol", email="carol@agency.test", phone="+" + CAROL, on_call=False))
    db.session.commit()
    return site


def report(client, site, **fields):
    path = f"/s/{site.site_key}/emergency"
    fields = {
        "subject": "Homepage replaced by a hacker message",
        "category": "hacked",
        "hacked_answer": "A black page saying 'owned by x'",
        "billing_consent": "y",
        **fields,
    }
    data = standard_fields(**fields)
    data.setdefault("form_token", form_token(client, path))
    return client.post(path, data=data)


def md5_signed(params: dict[str, str]) -> dict[str, str]:
    return vonage_signed({"timestamp": str(int(time.time())), **params}, SIG_SECRET)


def inbound(client, msisdn, text, message_id="m1", method="post", **extra):
    params = md5_signed(
        {
            "msisdn": msisdn,
            "to": "447700900999",
            "messageId": message_id,
            "text": text,
            "type": "text",
            **extra,
        }
    )
    if method == "get":
        return client.get("/webhooks/vonage/inbound", query_string=params)
    return client.post("/webhooks/vonage/inbound", data=params)


def test_form_offers_exactly_three_categories_and_shows_the_rate(client, site):
    page = client.get(f"/s/{site.site_key}/emergency").get_data(as_text=True)
    assert re.findall(r'name="category"[^>]*value="(\w+)"', page) == ["offline", "hacked", "broken"]
    assert "150.00 per hour" in page
    assert "Everything else is a normal request" in page


def test_client_without_sla_must_consent_to_billing(client, site):
    response = report(client, site, billing_consent="")
    assert response.status_code == 422
    assert "Please confirm you accept the emergency rate." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0


def test_emergency_pages_on_call_team_and_emails_everyone(
    client, site, smtp_server, vonage_standin
):
    response = report(client, site)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    reference = re.search(r"SUP-\d+", page).group(0)
    # Said once, in the one state every page shares (the widget gets the same words).
    assert re.sub(r"<[^>]*>", " ", page).count("being paged") == 1
    assert f"Emergency {reference}: the on-call team is being paged." in page

    paged = {r["to"] for r in vonage_standin.requests}
    assert paged == {ALICE, BOB}  # on call only; Carol is off duty
    text = vonage_standin.to(ALICE)[0]["text"]
    assert text.startswith(f"EMERGENCY {reference} hacked acme.test: Homepage replaced")
    assert f"Reply ACK {reference[4:]}" in text and "/a/" in text
    assert len(text) <= 160

    mails = smtp_server.wait_for(5)
    staff_subjects = [m["Subject"] for m in mails if m["To"] != "jane@example.com"]
    assert len(staff_subjects) == 4
    assert all(s.startswith("[EMERGENCY]") for s in staff_subjects)
    confirmation = next(m for m in mails if m["To"] == "jane@example.com")
    assert "being paged" in confirmation["Subject"]
    sms_rows = db.session.scalars(sa.select(Notification).where(Notification.channel == "sms"))
    assert {(r.status, bool(r.provider_id)) for r in sms_rows} == {("sent", True)}


def test_with_nobody_on_call_everyone_with_a_phone_is_paged_at_once(client, site, vonage_standin):
    for member in db.session.scalars(sa.select(Staff)):
        member.on_call = False
    db.session.commit()
    assert report(client, site).status_code == 200
    assert {r["to"] for r in vonage_standin.requests} == {ALICE, BOB, CAROL}


def test_a_queue_outage_after_filing_still_answers_with_the_reference(
    database_url, tmp_path, smtp_server
):
    # Filed and committed, then the queue is unreachable: the answer must not say
    # "nothing was saved" (a frightened client would file and page everyone again).
    app = make_app(
        database_url,
        tmp_path,
        **smtp_server.config(),
        QUEUE_URL="redis://127.0.0.1:1/0",
        QUEUE_IMMEDIATE=False,
        EMERGENCY_REPAGE_INTERVAL=60,
    )
    with app.app_context():
        from supportwidget.models import Client, Site

        site = Site(
            client=Client(name="Acme", emails=[]), name="acme.test", url="https://acme.test"
        )
        db.session.add(site)
        db.session.commit()
        site_key = site.site_key
        client = app.test_client()
        path = f"/s/{site_key}/emergency"
        data = standard_fields(category="offline", offline_answer="yes", billing_consent="y")
        response = client.post(path, data={**data, "form_token": form_token(client, path)})
        assert response.status_code == 200 and "SUP-" in response.get_data(as_text=True)
        ticket = db.session.scalar(sa.select(Ticket))
        assert ticket.next_page_at is not None  # the periodic re-page still knows when
        assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 1
        db.session.remove()
        db.engine.dispose()


LONG_NAMES = {
    "gsm": ("acme-" + "s" * 195, "Checkout " + "x" * 141),
    "non-gsm": ("Магазин " * 25, "Главная страница не открывается 🔥 " * 4),
}


@pytest.mark.parametrize("alphabet", LONG_NAMES)
def test_a_page_keeps_the_ack_instruction_and_the_whole_link(
    client, site, vonage_standin, alphabet
):
    # A 200-character site name once pushed "Reply ACK n" and the link out of the SMS.
    site_name, subject = LONG_NAMES[alphabet]
    site.name = site_name[:200]
    db.session.commit()
    assert report(client, site, subject=subject[:150]).status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    pages = db.session.scalars(sa.select(Notification).where(Notification.channel == "sms")).all()
    assert len(pages) == 2
    for page in pages:
        body = page.body_text
        # One GSM-7 SMS: a UCS-2 one would hold only 70 characters.
        assert is_gsm(body) and gsm_length(body) <= 160
        assert f"Reply ACK {ticket.id} or http://support.test/a/" in body
        code = re.search(r"http://support\.test/a/(\S+)$", body).group(1)
        assert links.read_ack_code(code) == (ticket, page.staff)
        # The names are shortened, not dropped.
        assert sms_text(site_name[:12]) in body and sms_text(subject[:8]) in body
        [sent] = vonage_standin.to(page.recipient.lstrip("+"))
        assert sent["text"] == body and sent["type"] != "unicode"
    assert client.get(f"/a/{code}").status_code == 200


def test_an_ack_link_stops_working_after_ack_link_max_age(app, client, site):
    report(client, site)
    ticket = db.session.scalar(sa.select(Ticket))
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    week = timedelta(seconds=app.config["ACK_LINK_MAX_AGE"])
    assert week == timedelta(days=7)
    recent = links.ack_code(ticket.id, bob.id, issued_at=utcnow() - week + timedelta(hours=1))
    assert "I'm on it" in client.get(f"/a/{recent}").get_data(as_text=True)
    old = links.ack_code(ticket.id, bob.id, issued_at=utcnow() - week - timedelta(seconds=5))
    for method in (client.get, client.post):
        response = method(f"/a/{old}")
        assert response.status_code == 410
        text = response.get_data(as_text=True)
        assert "This acknowledgement link has expired" in text
        assert f"Reply ACK {ticket.id}" in text and f"/dashboard/tickets/{ticket.reference}" in text
    assert db.session.scalar(sa.select(Ticket)).acknowledged_at is None
    # The issue time is signed: making an old link look new breaks it.
    ticket_id, staff_id, _, mac = old.split("-")
    stamp = recent.split("-")[2]
    assert client.get(f"/a/{ticket_id}-{staff_id}-{stamp}-{mac}").status_code == 404


def test_a_non_ascii_acknowledgement_link_is_not_found(client, site):
    assert client.get("/a/1-1-%C3%A9").status_code == 404


def test_a_json_webhook_that_is_not_an_object_is_refused(client, site):
    for body in ("[1]", "7", '"ACK"'):
        response = client.post(
            "/webhooks/vonage/inbound", data=body, content_type="application/json"
        )
        assert response.status_code == 403


def test_sms_ack_stops_paging_and_tells_the_others(client, site, smtp_server, vonage_standin):
    report(client, site)
    ticket = db.session.scalar(sa.select(Ticket))
    assert inbound(client, BOB, f"ack {ticket.id}").status_code == 204
    db.session.refresh(ticket)
    assert ticket.acknowledged_by.name == "Bob"
    notices = [r["text"] for r in vonage_standin.to(ALICE)]
    assert notices[-1] == f"{ticket.reference} acknowledged by Bob. No action needed."
    assert len(vonage_standin.to(BOB)) == 1  # Bob is not told about his own ack
    assert any(
        "Someone from our team is on it" in m["Subject"]
        for m in smtp_server.wait_for(6)
        if m["To"] == "jane@example.com"
    )
    # No page after the acknowledgement, however late the clock.
    before = len(vonage_standin.requests)
    assert emergencies.repage_due(now=utcnow() + timedelta(hours=5)) == 0
    assert len(vonage_standin.requests) == before


@pytest.mark.parametrize("text", ["ACK", "ack", "Ack SUP-{id}", "ACK {id}", "ack sup-{id}"])
def test_ack_forms_are_understood(client, site, text):
    report(client, site)
    ticket = db.session.scalar(sa.select(Ticket))
    assert inbound(client, ALICE, text.format(id=ticket.id), method="get").status_code == 204
    db.session.refresh(ticket)
    assert ticket.acknowledged_by.name == "Alice"


def test_ack_from_a_stranger_does_nothing(client, site):
    report(client, site)
    assert inbound(client, "447999999999", "ACK").status_code == 204
    assert db.session.scalar(sa.select(Ticket)).acknowledged_at is None


@pytest.mark.parametrize("tamper", ["forged", "stale", "unsigned"])
def test_bad_webhook_signatures_are_refused(client, site, tamper):
    report(client, site)
    params = md5_signed({"msisdn": ALICE, "messageId": "x1", "text": "ACK"})
    if tamper == "forged":
        params["text"] = "ACK 999"
    elif tamper == "stale":
        params = md5_signed(
            {
                "msisdn": ALICE,
                "messageId": "x1",
                "text": "ACK",
                "timestamp": str(int(time.time()) - 600),
            }
        )
    else:
        del params["sig"]
    assert client.post("/webhooks/vonage/inbound", data=params).status_code == 403
    assert db.session.scalar(sa.select(Ticket)).acknowledged_at is None


def test_replayed_message_id_is_refused(client, site):
    report(client, site)
    assert inbound(client, ALICE, "hello", message_id="same").status_code == 204
    assert inbound(client, ALICE, "ACK", message_id="same").status_code == 409
    assert db.session.scalar(sa.select(Ticket)).acknowledged_at is None


def test_ack_link_asks_first_then_acknowledges_once(client, site, vonage_standin):
    report(client, site)
    link = re.search(r"http://support\.test(/a/\S+)", vonage_standin.to(BOB)[0]["text"]).group(1)
    assert "I'm on it" in client.get(link).get_data(as_text=True)
    assert db.session.scalar(sa.select(Ticket)).acknowledged_at is None  # GET never acks
    assert "you have acknowledged" in client.post(link).get_data(as_text=True)
    again = client.post(link).get_data(as_text=True)
    assert "was acknowledged by Bob" in again
    assert client.get(link[:-3] + "abc").status_code == 404


def test_repaging_until_limit_then_escalation_to_everyone(
    client, site, smtp_server, vonage_standin
):
    report(client, site)
    ticket = db.session.scalar(sa.select(Ticket))
    start = ticket.created_at
    assert emergencies.repage_due(now=start + timedelta(seconds=30)) == 0  # not due yet
    assert emergencies.repage_due(now=start + timedelta(seconds=61)) == 1  # re-page 1
    assert emergencies.repage_due(now=start + timedelta(seconds=122)) == 1  # re-page 2 (limit)
    assert len(vonage_standin.to(CAROL)) == 0
    assert emergencies.repage_due(now=start + timedelta(seconds=183)) == 1  # escalation
    assert len(vonage_standin.to(CAROL)) == 1  # off-duty staff with a phone now paged too
    assert len(vonage_standin.to(ALICE)) == 4
    escalations = [m for m in smtp_server.wait_for(6) if "Unacknowledged" in m["Subject"]]
    assert [m["To"] for m in escalations] == ["alice@agency.test"]  # admins only
    assert emergencies.repage_due(now=start + timedelta(hours=1)) == 0  # schedule ended


def test_repage_schedule_survives_a_restart(
    database_url, tmp_path, app, client, site, smtp_server, vonage_standin
):
    report(client, site)
    ticket_id = db.session.scalar(sa.select(Ticket.id))
    # A new process: fresh app object on the same database, nothing in memory.
    fresh = make_app(
        database_url,
        tmp_path,
        **smtp_server.config(),
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        EMERGENCY_REPAGE_INTERVAL=60,
    )
    with fresh.app_context():
        due = db.session.get(Ticket, ticket_id).next_page_at
        assert emergencies.repage_due(now=due + timedelta(seconds=1)) == 1
        db.session.remove()
    assert len(vonage_standin.to(ALICE)) == 2


def test_invalid_number_fails_visibly_and_staff_are_told(client, site, smtp_server, vonage_standin):
    vonage_standin.behaviour[BOB] = "invalid"
    report(client, site)
    bob_row = db.session.scalar(sa.select(Notification).where(Notification.recipient == "+" + BOB))
    assert bob_row.status == "failed" and "Invalid to address" in bob_row.last_error
    told = [m for m in smtp_server.wait_for(9) if "Could not page Bob" in m["Subject"]]
    assert len(told) == 4


def test_throttled_page_is_retried_without_a_second_page_for_the_same_row(
    client, site, vonage_standin
):
    vonage_standin.behaviour[ALICE] = "throttled"
    report(client, site)
    row = db.session.scalar(sa.select(Notification).where(Notification.recipient == "+" + ALICE))
    assert row.status == "pending" and "Throughput" in row.last_error
    vonage_standin.behaviour[ALICE] = "ok"
    outbox.deliver_due(now=utcnow() + timedelta(minutes=5))
    db.session.refresh(row)
    assert row.status == "sent"
    assert len(vonage_standin.to(ALICE)) == 2  # one throttled attempt, one accepted


def test_a_throttled_page_is_retried_only_until_the_next_round(app, client, site, vonage_standin):
    vonage_standin.behaviour[ALICE] = "throttled"
    report(client, site)
    row = db.session.scalar(sa.select(Notification).where(Notification.recipient == "+" + ALICE))
    assert row.status == "pending"
    # Still throttled just before the next round (60 s): that round pages again, so a retry
    # after it would page Alice twice for one round. The row stops, visibly failed.
    outbox.deliver_due(now=row.created_at + timedelta(seconds=59))
    db.session.refresh(row)
    assert row.status == "failed" and "Throughput" in row.last_error
    assert len(vonage_standin.to(ALICE)) == 2


def test_dropped_connection_never_pages_twice(client, site, smtp_server, vonage_standin):
    vonage_standin.behaviour[ALICE] = "drop"
    report(client, site)
    outbox.deliver_due(now=utcnow() + timedelta(hours=1))
    row = db.session.scalar(sa.select(Notification).where(Notification.recipient == "+" + ALICE))
    assert row.status == "failed" and "outcome unknown" in row.last_error
    assert len(vonage_standin.to(ALICE)) == 1


def test_failed_delivery_receipt_is_stored_and_reported(client, site, smtp_server, vonage_standin):
    report(client, site)
    row = db.session.scalar(sa.select(Notification).where(Notification.recipient == "+" + BOB))
    params = md5_signed(
        {
            "msisdn": BOB,
            "messageId": row.provider_id,
            "status": "failed",
            "err-code": "6",
            "client-ref": str(row.id),
            "message-timestamp": "2026-11-26 03:00:00",
        }
    )
    assert client.post("/webhooks/vonage/status", data=params).status_code == 204
    db.session.refresh(row)
    assert row.delivery_status == "failed"
    assert "delivery failed" in row.last_error
    assert any("Could not page Bob" in m["Subject"] for m in smtp_server.wait_for(9))
    # The same receipt again is a replay.
    assert client.post("/webhooks/vonage/status", data=params).status_code == 409


def three_open_emergencies(client, site):
    """File three emergencies (all paged to Alice) and return them oldest first."""
    for n in range(3):
        report(client, site, subject=f"Shop down, report {n}")
    return db.session.scalars(sa.select(Ticket).order_by(Ticket.id)).all()


def folded(params):
    """Fold messageId into the name of the parameter before it: the signed string is unchanged."""
    replay = {k: v for k, v in params.items() if k not in ("messageId", "message-timestamp")}
    replay[f"message-timestamp={params['message-timestamp']}&messageId"] = params["messageId"]
    return replay


def test_a_captured_ack_replayed_with_messageid_folded_into_a_name_is_refused(client, site):
    first, second, third = three_open_emergencies(client, site)
    genuine = md5_signed(
        {
            "msisdn": ALICE,
            "to": "447700900999",
            "messageId": "0A0000001",
            "message-timestamp": "2026-11-26 03:00:00",
            "text": "ACK",
            "type": "text",
        }
    )
    assert client.post("/webhooks/vonage/inbound", data=genuine).status_code == 204
    replay = folded(genuine)
    assert client.post("/webhooks/vonage/inbound", data=replay).status_code == 403
    # The same replay with the signature in upper case (it compares case-blind).
    shouted = {**replay, "sig": replay["sig"].upper()}
    assert client.post("/webhooks/vonage/inbound", data=shouted).status_code == 403
    db.session.expire_all()
    assert third.acknowledged_by.name == "Alice"  # the genuine ACK took the newest
    assert (first.acknowledged_at, second.acknowledged_at) == (None, None)


def test_an_inbound_sms_without_message_id_is_refused(client, site):
    (ticket, *_) = three_open_emergencies(client, site)
    params = md5_signed({"msisdn": ALICE, "to": "447700900999", "text": f"ACK {ticket.id}"})
    response = client.post("/webhooks/vonage/inbound", data=params)
    assert response.status_code == 400 and "messageId" in response.get_data(as_text=True)
    db.session.refresh(ticket)
    assert ticket.acknowledged_at is None


def test_a_delivery_receipt_without_message_id_is_refused(client, site):
    report(client, site)
    row = db.session.scalar(sa.select(Notification).where(Notification.recipient == "+" + BOB))
    params = md5_signed({"msisdn": BOB, "status": "failed", "client-ref": str(row.id)})
    assert client.post("/webhooks/vonage/status", data=params).status_code == 400
    db.session.refresh(row)
    assert row.delivery_status is None


def test_a_call_back_phone_on_two_lines_is_refused(client, site, vonage_standin):
    response = report(client, site, callback_phone="+44 7700 900123\r\nCall +1 900 555 0100")
    assert response.status_code == 422
    assert "without line breaks" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    assert vonage_standin.requests == []
