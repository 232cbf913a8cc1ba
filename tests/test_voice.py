"""Voice escalation: calls through the real Vonage SDK against the TLS stand-in, and the voice
callbacks, which only Vonage's signed JWT for the very body, sent just now, may drive."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Notification, Ticket, db

from conftest import form_token, make_app, standard_fields
from vonage_standin import (
    API_KEY,
    API_SECRET,
    APPLICATION_ID,
    application_keys,
    signed_callback,
)

SIG_SECRET = "voice-signature-secret-32-bytes-long"
ALICE, BOB = "447700900001", "447700900002"


@pytest.fixture
def app_config(vonage_standin):
    return dict(
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        VONAGE_APPLICATION_ID=APPLICATION_ID,
        VONAGE_PRIVATE_KEY=application_keys()[0],  # the PEM itself
        VONAGE_API_HOST=vonage_standin.host,
        VONAGE_SIGNATURE_SECRET=SIG_SECRET,
        SMS_TIMEOUT=1,
        EMERGENCY_REPAGE_INTERVAL=60,
        EMERGENCY_CALL_AFTER=2,
    )


def file_emergency(client, site):
    path = f"/s/{site.site_key}/emergency"
    data = standard_fields(
        category="hacked", hacked_answer="A defaced homepage", billing_consent="y"
    )
    response = client.post(path, data={**data, "form_token": form_token(client, path)})
    assert response.status_code == 200
    return db.session.scalar(sa.select(Ticket))


def repage(ticket, *intervals):
    """Let these re-page intervals (1: the first) pass, unacknowledged."""
    for n in intervals:
        assert emergencies.repage_due(now=ticket.created_at + timedelta(seconds=61 * n)) == 1


def test_phoned_only_after_call_after_unacknowledged_rounds_once_per_round(
    client, site, vonage_standin
):
    ticket = file_emergency(client, site)
    repage(ticket, 1)  # two SMS rounds so far: nobody phoned yet
    assert vonage_standin.calls == []
    repage(ticket, 2)  # the third round also phones
    assert sorted(call.to for call in vonage_standin.calls) == [ALICE, BOB]
    # The same round run again (a second worker, a retry) phones nobody twice.
    assert emergencies.repage(ticket.id, now=ticket.created_at + timedelta(seconds=130)) is False
    assert len(vonage_standin.calls) == 2
    rows = db.session.scalars(sa.select(Notification).where(Notification.channel == "voice"))
    assert sorted((r.purpose, r.status) for r in rows) == [("call-3", "sent"), ("call-3", "sent")]
    call = vonage_standin.calls[0]
    assert call.answer_url.startswith("http://support.test/webhooks/vonage/voice/answer?call=")
    assert call.request["event_method"] == "POST" and call.request["ringing_timer"] == 45


def test_a_call_vonage_did_not_take_is_retried_and_a_dropped_one_is_not(
    client, site, vonage_standin
):
    vonage_standin.behaviour[ALICE] = "http503"
    vonage_standin.behaviour[BOB] = "drop"
    ticket = file_emergency(client, site)
    repage(ticket, 1, 2)
    db.session.expire_all()  # the worker's session recorded the outcomes
    rows = {
        r.recipient: r
        for r in db.session.scalars(sa.select(Notification).where(Notification.channel == "voice"))
    }
    assert rows["+" + ALICE].status == "pending"  # retried until the next round
    assert "HTTP 503" in rows["+" + ALICE].last_error
    assert rows["+" + BOB].status == "failed"
    assert "outcome unknown" in rows["+" + BOB].last_error


def good_call(client, site, vonage_standin):
    ticket = file_emergency(client, site)
    repage(ticket, 1, 2)
    return ticket, vonage_standin.calls_to(BOB)[0]


def test_pressing_1_acknowledges_and_anything_else_asks_again(client, site, vonage_standin):
    ticket, call = good_call(client, site, vonage_standin)
    path, body, headers = call.callback(call.answer_url, SIG_SECRET)
    keypad = client.post(path, data=body, headers=headers).get_json()[1]
    url = keypad["eventUrl"][0]
    path, body, headers = call.callback(url, SIG_SECRET, dtmf={"digits": "", "timed_out": True})
    again = client.post(path, data=body, headers=headers).get_json()
    assert again[0]["text"].startswith("Nothing was acknowledged. Press 1")
    assert again[1]["eventUrl"] == [url]
    assert db.session.get(Ticket, ticket.id).acknowledged_at is None
    path, body, headers = call.callback(url, SIG_SECRET, dtmf={"digits": "1"})
    assert "You have acknowledged" in client.post(path, data=body, headers=headers).text
    acked = db.session.get(Ticket, ticket.id)
    assert acked.acknowledged_by.name == "Bob"
    assert [e.detail for e in acked.events if e.kind == "acknowledged"] == [{"via": "voice"}]


def refused(client, call, tamper) -> int:
    """Send an answer callback spoiled by `tamper`; return the status."""
    path, body, headers = tamper(*call.callback(call.answer_url, SIG_SECRET))
    return client.post(path, data=body, headers=headers).status_code


def stale(path, body, headers):
    return signed_callback(f"http://x{path}", body, SIG_SECRET, issued_at=time.time() - 301)


def forged(path, body, headers):
    return signed_callback(f"http://x{path}", body, "not-the-secret-but-32-bytes-long!")


def other_body(path, body, headers):
    swapped = json.dumps({**json.loads(body), "status": "answered"}).encode()
    return path, swapped, headers


def unsigned(path, body, headers):
    return path, body, {"Content-Type": "application/json"}


def other_application(path, body, headers):
    return signed_callback(f"http://x{path}", body, SIG_SECRET, application_id="someone-else")


def not_bearer(path, body, headers):
    return (
        path,
        body,
        {**headers, "Authorization": headers["Authorization"].replace("Bearer", "Basic")},
    )


@pytest.mark.parametrize(
    "tamper", [stale, forged, other_body, unsigned, other_application, not_bearer]
)
def test_forged_stale_or_unsigned_voice_callbacks_are_refused(client, site, vonage_standin, tamper):
    _, call = good_call(client, site, vonage_standin)
    assert refused(client, call, tamper) == 403
    # The genuine one still works.
    assert refused(client, call, lambda *request: request) == 200


def test_a_forged_keypress_acknowledges_nothing(client, site, vonage_standin):
    ticket, call = good_call(client, site, vonage_standin)
    url = f"http://support.test/webhooks/vonage/voice/input?call={call.answer_url.split('=')[1]}"
    path, body, headers = call.callback(url, "not-the-secret-but-32-bytes-long!", dtmf="1")
    assert client.post(path, data=body, headers=headers).status_code == 403
    assert db.session.get(Ticket, ticket.id).acknowledged_at is None


def test_a_replayed_callback_is_refused_and_a_callback_for_another_call_too(
    client, site, vonage_standin
):
    _, call = good_call(client, site, vonage_standin)
    path, body, headers = call.callback(call.event_url, SIG_SECRET, status="busy")
    assert client.post(path, data=body, headers=headers).status_code == 204
    assert client.post(path, data=body, headers=headers).status_code == 409
    other = vonage_standin.calls_to(ALICE)[0]
    path, body, headers = call.callback(other.event_url, SIG_SECRET, status="answered")
    assert client.post(path, data=body, headers=headers).status_code == 403
    bad = call.callback(call.event_url.replace("call=", "call=9"), SIG_SECRET, status="busy")
    assert client.post(bad[0], data=bad[1], headers=bad[2]).status_code == 404


def test_voice_callbacks_are_refused_without_a_signature_secret(
    database_url, tmp_path, smtp_server
):
    app = make_app(database_url, tmp_path, **smtp_server.config())
    with app.app_context():
        path, body, headers = signed_callback(
            "http://support.test/webhooks/vonage/voice/event?call=1", b"{}", SIG_SECRET
        )
        assert app.test_client().post(path, data=body, headers=headers).status_code == 403
        db.session.remove()
        db.engine.dispose()


def test_without_credentials_calls_go_to_a_file_and_start_up_says_so(
    database_url, tmp_path, smtp_server, caplog
):
    with caplog.at_level(logging.WARNING):
        app = make_app(database_url, tmp_path, **smtp_server.config(), EMERGENCY_CALL_AFTER=0)
    assert "NO PHONE CALL WILL BE MADE" in caplog.text and "calls.jsonl" in caplog.text
    with app.app_context():
        from conftest import seed_site

        site = seed_site()
        client = app.test_client()
        file_emergency(client, site)  # EMERGENCY_CALL_AFTER=0: phoned with the first page
        lines = (tmp_path / "instance" / "calls.jsonl").read_text().splitlines()
        calls = [json.loads(line) for line in lines]
        assert sorted(c["to"] for c in calls) == ["+" + ALICE, "+" + BOB]
        assert "Press 1 to acknowledge" in calls[0]["text"]
        assert calls[0]["answer_url"].startswith("http://support.test/webhooks/vonage/voice/answer")
        assert app.test_client().get("/healthz").get_json()["channels"]["voice"] == "file"
        db.session.remove()
        db.engine.dispose()
