"""The outbox: every row goes out through its own channel or fails; retried for days through
long outages, sent again by staff, failures digested for the admins."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from supportwidget.models import Notification, Staff, Ticket, TicketEvent, db, utcnow
from supportwidget.notify import outbox
from supportwidget.notify.channels import CHANNELS
from supportwidget.notify.channels.sms import sms_sent
from supportwidget.tickets import actions as updates
from supportwidget.worker import run_periodic

from test_dashboard import csrf_from, login, new_request

BOB_PASSWORD = "correct horse battery"


def rows() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Notification).order_by(Notification.id)))


def failed_mail(site, smtp_server, **fields) -> Notification:
    """File a request whose first e-mail a relay refuses for good (550 for its recipient)."""
    smtp_server.refuse_next(1, code=550, at="rcpt")
    ticket = new_request(site, **fields)
    [row] = [r for r in ticket.notifications if r.status == "failed"]
    return row


def test_default_retry_window_is_three_days(app):
    assert app.config["OUTBOX_RETRY_HOURS"] == 72
    assert "OUTBOX_MAX_ATTEMPTS" not in app.config


def test_an_outage_longer_than_the_old_backoff_still_delivers(site, smtp_server):
    start = utcnow()
    with smtp_server.outage():
        new_request(site)
        # Five hours down. The old schedule gave up after 8 attempts (about 32 min).
        for minutes in range(15, 5 * 60 + 1, 15):
            now = start + timedelta(minutes=minutes)
            outbox.deliver_due(now=now)
            assert {r.status for r in rows()} == {"pending"}
            # The interval never grows past 15 minutes, so recovery is noticed quickly.
            assert all(r.next_attempt_at <= now + timedelta(minutes=15) for r in rows())
    assert min(r.attempts for r in rows()) > 8
    assert outbox.deliver_due(now=start + timedelta(hours=5, minutes=15)) == 4
    assert len(smtp_server.wait_for(4)) == 4
    assert {r.status for r in rows()} == {"sent"}


def test_passing_failures_end_failed_after_outbox_retry_hours(app, site, smtp_server):
    app.config["OUTBOX_RETRY_HOURS"] = 2
    start = utcnow()
    with smtp_server.outage():
        new_request(site)
        for minutes in range(15, 105 + 1, 15):
            outbox.deliver_due(now=start + timedelta(minutes=minutes))
        assert {r.status for r in rows()} == {"pending"}
        for minutes in range(120, 150 + 1, 15):
            outbox.deliver_due(now=start + timedelta(minutes=minutes))
    assert {r.status for r in rows()} == {"failed"}
    assert all(str(smtp_server.port) in r.last_error for r in rows())


@pytest.mark.parametrize("stage", ["connect", "mail"])
def test_a_relay_refusing_everything_is_an_outage_not_a_loss(site, smtp_server, stage):
    start = utcnow()
    with smtp_server.refusing_everything(554, at=stage):
        new_request(site)
        outbox.deliver_due(now=start + timedelta(hours=1))
        assert {r.status for r in rows()} == {"pending"}
        assert all("554" in r.last_error for r in rows())
    outbox.deliver_due(now=start + timedelta(hours=2))
    assert len(smtp_server.wait_for(4)) == 4
    assert {r.status for r in rows()} == {"sent"}


def test_a_550_for_one_recipient_still_fails_at_once(site, smtp_server):
    row = failed_mail(site, smtp_server)
    assert row.attempts == 1 and "550" in row.last_error
    assert sorted(r.status for r in rows()) == ["failed", "sent", "sent", "sent"]
    assert row.recipient not in [m["To"] for m in smtp_server.messages]


def test_staff_resend_a_failed_mail_from_the_ticket_page(client, site, smtp_server):
    row = failed_mail(site, smtp_server)
    ticket = db.session.get(Ticket, row.ticket_id)
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    bob.set_password(BOB_PASSWORD)
    db.session.commit()
    login(client, "bob@agency.test")
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    action = f"/dashboard/tickets/{ticket.reference}/notifications/{row.id}/resend"
    assert f'action="{action}"' in page  # the button sits next to the failed row
    assert page.count("/resend") == 1  # and only there
    assert client.post(action).status_code == 400  # CSRF-protected
    response = client.post(action, data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    [mail] = [m for m in smtp_server.wait_for(4) if m["To"] == row.recipient]
    db.session.refresh(row)
    assert row.status == "sent"
    event = db.session.scalar(sa.select(TicketEvent).where(TicketEvent.kind == "resent"))
    assert event.staff_id == bob.id
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert f"Sent again by Bob: email to {row.recipient}" in page
    # A row that is not failed cannot be sent twice this way.
    again = client.post(action, data={"csrf_token": csrf_from(page)})
    assert again.status_code == 422 and "only a failed one" in again.get_data(as_text=True)
    other = client.post(
        f"/dashboard/tickets/{ticket.reference}/notifications/99999/resend",
        data={"csrf_token": csrf_from(page)},
    )
    assert other.status_code == 404
    # The ticket's other actions still answer on their own route.
    status = client.post(
        f"/dashboard/tickets/{ticket.reference}/status",
        data={"csrf_token": csrf_from(page), "status": "in_progress"},
    )
    assert status.status_code == 303


def test_a_resent_row_gets_a_fresh_retry_window(app, site, smtp_server):
    app.config["OUTBOX_RETRY_HOURS"] = 1
    row = failed_mail(site, smtp_server)
    row.created_at = utcnow() - timedelta(days=5)
    db.session.commit()

    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    with smtp_server.outage():
        updates.resend(db.session.get(Ticket, row.ticket_id), bob, row)
    db.session.refresh(row)
    assert row.status == "pending" and row.attempts == 1


def test_admins_get_one_digest_of_what_failed(site, smtp_server):
    first = failed_mail(site, smtp_server, subject="First broken thing")
    second = failed_mail(site, smtp_server, subject="Second broken thing")
    start = utcnow()
    assert outbox.report_failures(now=start) == 1  # one admin: Alice
    [digest] = smtp_server.wait_for(7)[6:]  # 2 × 4 mails of which 2 failed, then the digest
    assert digest["To"] == "alice@agency.test"
    assert "2 notifications failed" in digest["Subject"]
    body = digest.get_body(("plain",)).get_content()
    for row in (first, second):
        assert f"http://support.test/dashboard/tickets/SUP-{row.ticket_id}" in body
        assert row.recipient in body and "550" in body
    # Nothing new: nothing sent, however often the periodic job runs.
    assert outbox.report_failures(now=start + timedelta(minutes=1)) == 0
    run_periodic()
    # A new failure within the hour waits for the next hour's digest, which lists only it.
    third = failed_mail(site, smtp_server, subject="Third broken thing")
    count = len(smtp_server.messages)
    assert outbox.report_failures(now=start + timedelta(minutes=2)) == 0
    assert outbox.report_failures(now=start + timedelta(hours=1, minutes=1)) == 1
    [digest] = smtp_server.wait_for(count + 1)[count:]
    body = digest.get_body(("plain",)).get_content()
    assert f"SUP-{third.ticket_id} Third broken thing" in body
    assert "First broken thing" not in body and "1 notification has failed" in body


def test_no_digest_about_a_failed_digest(site, smtp_server):
    failed_mail(site, smtp_server)
    start = utcnow()
    smtp_server.refuse_next(1, code=550, at="rcpt")  # the digest itself is refused
    assert outbox.report_failures(now=start) == 1
    [digest] = [r for r in rows() if r.purpose == "failure-digest"]
    assert digest.status == "failed"
    count = len(smtp_server.messages)
    assert outbox.report_failures(now=start + timedelta(hours=2)) == 0
    assert outbox.report_failures(now=start + timedelta(hours=4)) == 0
    assert len(smtp_server.messages) == count


def test_the_periodic_job_sends_the_digest(site, smtp_server):
    failed_mail(site, smtp_server)
    run_periodic()
    assert [r.recipient for r in rows() if r.purpose == "failure-digest"] == ["alice@agency.test"]


def test_a_page_nobody_needs_any_more_is_not_sent_again(client, site, smtp_server):
    from test_dashboard import new_emergency

    ticket = new_emergency(site)
    page = next(r for r in ticket.notifications if r.channel == "sms")
    page.status, page.last_error = "failed", "Vonage status 9: Partner quota exceeded"
    db.session.commit()
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    bob.set_password(BOB_PASSWORD)
    db.session.commit()
    login(client, "bob@agency.test")
    url = f"/dashboard/tickets/{ticket.reference}"
    assert f"/notifications/{page.id}/resend" in client.get(url).get_data(as_text=True)
    updates.acknowledge(ticket, bob)
    html = client.get(url).get_data(as_text=True)
    assert f"/notifications/{page.id}/resend" not in html
    refused = client.post(
        f"{url}/notifications/{page.id}/resend", data={"csrf_token": csrf_from(html)}
    )
    assert refused.status_code == 422 and "needs nobody paged" in refused.get_data(as_text=True)
    db.session.refresh(page)
    assert page.status == "failed"


def test_a_row_for_an_unknown_channel_fails_visibly_and_is_never_sent_as_an_sms(app: Flask):
    row = Notification(channel="fax", recipient="+447700900123", purpose="test", body_text="Hi")
    db.session.add(row)
    db.session.commit()
    texts: list[str] = []

    def record(sender: Flask, **details: object) -> None:
        texts.append(str(details["text"]))

    with sms_sent.connected_to(record, sender=app):
        outbox.schedule([row])  # tests run jobs at once: this delivers
    db.session.refresh(row)
    assert row.status == "failed"
    assert row.last_error == "no channel 'fax': not sent"
    assert texts == []


def test_every_channel_sends_on_a_lane_of_its_own():
    # An SMS page must never wait behind a slow SMTP server: no two channels share a lane.
    lanes = [channel.lane for channel in CHANNELS.values()]
    assert sorted(lanes) == sorted(set(lanes)) and len(lanes) >= 2


def test_a_row_for_an_unknown_channel_is_in_the_admins_digest(site, smtp_server):
    row = Notification(channel="fax", recipient="+447700900123", purpose="test", body_text="Hi")
    db.session.add(row)
    db.session.commit()
    outbox.schedule([row])  # tests run jobs at once: this delivers
    db.session.expire_all()  # as the worker would, see the row the delivery wrote
    assert outbox.report_failures() == 1
    [digest] = smtp_server.wait_for(1)
    body = digest.get_body(("plain",)).get_content()
    assert "fax to +447700900123" in body and "no channel 'fax'" in body
