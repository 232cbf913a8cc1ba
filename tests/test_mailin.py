"""Mail-in: replies thread onto tickets, clients open tickets by e-mail, strangers are refused."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from supportwidget import create_app
from supportwidget.models import Notification, SlaPause, Staff, Ticket, TicketEvent, db
from supportwidget.tickets import actions as updates

from test_dashboard import new_request


def mail(sender, subject, body="Here is the information you asked for.", **headers):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@agency.test"
    msg["Subject"] = subject
    msg["Message-ID"] = headers.pop("message_id", f"<{abs(hash((sender, subject, body)))}@x.test>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def pipe(runner, msg):
    """Deliver a message the way an MTA pipe does."""
    raw = msg.as_bytes() if isinstance(msg, EmailMessage) else msg
    return runner.invoke(args=["mail-in"], input=raw)


def events(ticket, kind):
    return db.session.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == kind)
    ).all()


def test_reply_to_a_ticket_email_threads_and_resumes_the_clock(runner, site, smtp_server):
    ticket = new_request(site)
    confirmation = next(m for m in smtp_server.wait_for(4) if m["To"] == "jane@example.com")
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    updates.change_status(ticket, bob, "waiting_on_client")
    smtp_server.clear()
    reply = mail(
        "Jane Owner <Jane@Example.com>",
        "Re: " + confirmation["Subject"].replace(f"[{ticket.reference}]", ""),
        "It still fails on Safari.\n\nOn Tue, 1 Dec 2026 at 10:00, Support wrote:\n> quoted text\n",
        In_Reply_To=confirmation["Message-ID"],
        References=confirmation["References"] + " " + confirmation["Message-ID"],
    )
    result = pipe(runner, reply)
    assert result.exit_code == 0, result.output
    assert f"reply added to {ticket.reference}" in result.output
    db.session.expire_all()
    (event,) = events(ticket, "client_reply")
    assert event.detail["body"] == "It still fails on Safari."
    assert ticket.status == "in_progress"
    pause = db.session.scalar(sa.select(SlaPause).where(SlaPause.ticket_id == ticket.id))
    assert pause.ended_at is not None
    staff_mails = smtp_server.wait_for(3)  # Alice, Bob, the staff inbox
    assert {m["To"] for m in staff_mails} == {
        "alice@agency.test",
        "bob@agency.test",
        "inbox@agency.test",
    }
    assert all(
        "It still fails on Safari." in m.get_body(("plain",)).get_content() for m in staff_mails
    )
    # Staff answer through the support mailbox (mail-in), not straight to the requester.
    assert all(m["Reply-To"] is None for m in staff_mails)
    # The MTA retries the same message: it is not added twice.
    assert pipe(runner, reply).exit_code == 0
    assert len(events(ticket, "client_reply")) == 1


def test_subject_reference_threads_for_the_requester(runner, site, smtp_server):
    ticket = new_request(site)
    result = pipe(runner, mail("jane@example.com", f"Re: [{ticket.reference}] anything"))
    assert result.exit_code == 0
    assert len(events(ticket, "client_reply")) == 1


def test_forged_subject_reference_from_a_stranger_is_refused(runner, site, smtp_server):
    ticket = new_request(site)
    smtp_server.wait_for(4)
    smtp_server.clear()
    forged = mail(
        "Mallory <mallory@evil.test>",
        f"Re: [{ticket.reference}] please reset the admin password",
        References=f"<SUP-{ticket.id}.deadbeef@support.test>",
    )
    result = pipe(runner, forged)
    assert result.exit_code == 0 and "refused" in result.output
    assert events(ticket, "client_reply") == []
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 1
    (refusal,) = smtp_server.wait_for(1)
    assert refusal["To"] == "mallory@evil.test"
    assert "no ticket was opened" in refusal.get_body(("plain",)).get_content()
    row = db.session.scalar(sa.select(Notification).where(Notification.purpose == "mailin-refused"))
    assert row.ticket_id is None and row.status == "sent"


def test_forged_reference_from_another_client_contact_opens_their_own_ticket(runner, site):
    ticket = new_request(site)
    result = pipe(runner, mail("owner@acme.test", f"[{ticket.reference}] close this please"))
    assert result.exit_code == 0 and "opened SUP-" in result.output
    assert events(ticket, "client_reply") == []
    db.session.refresh(ticket)
    assert ticket.status == "new"
    newest = db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc()))
    assert newest.id != ticket.id and newest.requester_email == "owner@acme.test"


def test_another_installation_message_id_does_not_thread(runner, site, smtp_server):
    ticket = new_request(site)
    smtp_server.wait_for(4)
    smtp_server.clear()
    other = f"<SUP-{ticket.id}.0000aaaa@elsewhere.test>"
    result = pipe(
        runner, mail("jane@example.com", "Re: hello", In_Reply_To=other, References=other)
    )
    assert result.exit_code == 0 and "refused" in result.output
    assert events(ticket, "client_reply") == []


def png_bytes():
    out = io.BytesIO()
    Image.new("RGB", (8, 6), "blue").save(out, "PNG")
    return out.getvalue()


def test_client_contact_opens_a_standard_ticket_by_email(runner, site, smtp_server):
    msg = mail(
        "Acme Owner <owner@acme.test>",
        "Newsletter signup broken",
        "The signup box on the homepage <b>does nothing</b>.",
    )
    msg.add_attachment(png_bytes(), maintype="image", subtype="png", filename="signup.png")
    msg.add_attachment(
        b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="virus.exe"
    )
    result = pipe(runner, msg)
    assert result.exit_code == 0, result.output
    ticket = db.session.scalar(sa.select(Ticket))
    assert (ticket.kind, ticket.subject, ticket.requester_email, ticket.site_id) == (
        "standard",
        "Newsletter signup broken",
        "owner@acme.test",
        site.id,
    )
    assert "<b>does nothing</b>" in ticket.description
    assert [a.filename for a in ticket.attachments] == ["signup.png"]
    mails = smtp_server.wait_for(4)
    confirmation = next(m for m in mails if m["To"] == "owner@acme.test")
    assert ticket.reference in confirmation["Subject"]
    # A retried delivery does not open a second ticket.
    assert pipe(runner, msg).exit_code == 0
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 1


def test_html_only_message_becomes_text(runner, site):
    msg = EmailMessage()
    msg["From"] = "owner@acme.test"
    msg["Message-ID"] = "<html-only@x.test>"
    msg.set_content("<p>Please swap the <b>logo</b></p><script>x()</script>", subtype="html")
    assert pipe(runner, msg).exit_code == 0
    ticket = db.session.scalar(sa.select(Ticket))
    assert "Please swap the" in ticket.description and "logo" in ticket.description
    assert "<" not in ticket.description and "x()" not in ticket.description
    assert ticket.subject == "E-mail from owner@acme.test"


@pytest.mark.parametrize(
    "headers",
    [{"Auto_Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"List_Id": "<news.x.test>"}],
)
def test_automatic_mail_from_strangers_gets_no_answer(runner, site, smtp_server, headers):
    result = pipe(runner, mail("robot@elsewhere.test", "Out of office", **headers))
    assert result.exit_code == 0 and "dropped" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0


def test_an_out_of_office_reply_does_not_reopen_the_ticket(runner, site, smtp_server):
    ticket = new_request(site)
    updates.change_status(ticket, db.session.scalar(sa.select(Staff)), "resolved")
    sent = db.session.scalar(sa.select(sa.func.count(Notification.id)))
    subject = f"Automatic reply: [{ticket.reference}] Contact form broken"
    auto = mail("jane@example.com", subject, "I am away.", Auto_Submitted="auto-replied")
    result = pipe(runner, auto)
    assert result.exit_code == 0 and "dropped: automatic message" in result.output
    db.session.refresh(ticket)
    assert ticket.status == "resolved" and events(ticket, "client_reply") == []
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == sent


@pytest.mark.parametrize("reference", ["SUP-99999999999", "SUP-99999999999999999999"])
def test_another_system_s_long_reference_is_no_ticket_of_ours(runner, site, reference):
    # It once raised an overflow (or PostgreSQL's 'out of range') and the MTA retried for days.
    result = pipe(runner, mail("owner@acme.test", f"Re: [{reference}] invoice", "Please check."))
    assert result.exit_code == 0 and "opened SUP-" in result.output


def test_an_overlong_sender_address_is_dropped_without_retry(runner, site):
    result = pipe(runner, mail("x" * 250 + "@elsewhere.test", "Hello"))
    assert result.exit_code == 0 and "dropped: no usable From address" in result.output


def test_garbage_is_dropped_without_retry(runner, site):
    result = pipe(runner, b"this is not an e-mail at all")
    assert result.exit_code == 0 and "dropped" in result.output


def test_database_unreachable_asks_the_mta_to_retry(tmp_path: Path, site):
    broken = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "INSTANCE_PATH": str(tmp_path / "broken-instance"),
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'db.sqlite'}",
            "QUEUE_URL": "memory://",
        }
    )
    with broken.app_context():
        result = broken.test_cli_runner().invoke(
            args=["mail-in"], input=mail("owner@acme.test", "Help").as_bytes()
        )
        db.session.remove()
        db.engine.dispose()
    assert result.exit_code == 75, result.output
    assert "database unavailable" in result.output


def test_without_authserv_id_a_reply_threads_and_the_ticket_says_sender_not_verified(
    client, runner, site, smtp_server
):
    from test_dashboard import PASSWORD, login

    ticket = new_request(site)
    assert (
        "reply added" in pipe(runner, mail("jane@example.com", f"[{ticket.reference}] more")).output
    )
    opened = pipe(runner, mail("owner@acme.test", "New menu entry please"))
    assert "opened SUP-" in opened.output
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    bob.set_password(PASSWORD)
    db.session.commit()
    login(client, "bob@agency.test")
    for reference in (ticket.reference, opened.output.split("opened ")[1].strip()):
        page = client.get(f"/dashboard/tickets/{reference}").get_data(as_text=True)
        assert "sender not verified" in page


def nested_mime(depth):
    head = b"From: owner@acme.test\r\nSubject: deep\r\nMessage-ID: <deep@x.test>\r\n"
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
        for n in range(depth)
    )
    closing = b"".join(b"--b%d--\r\n" % n for n in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nhello\r\n" + closing


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (nested_mime(3000), "MIME parts nested too deeply"),
        (
            b"From: =?utf-8?q?Jane=0D=0ABcc:_v@x.test?= <jane@example.com>\r\n\r\nhi",
            "unreadable From header",
        ),
        (b"From: =?utf-8?q?a=00b?=@example.com\r\nSubject: x\r\n\r\nhi", "unreadable From header"),
        (b"From: owner@acme.test\r\n\r\n" + b"x" * (30 * 1024 * 1024), "message too large"),
    ],
    ids=["nested-3000-deep", "encoded-crlf-in-from", "nul-in-from-address", "too-large"],
)
def test_a_message_that_can_never_be_filed_bounces_with_a_reason(runner, site, raw, reason):
    result = pipe(runner, raw)
    assert result.exit_code == 65, result.output
    assert f"mail-in: cannot be filed, {reason}" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0


def test_control_characters_in_a_client_mail_are_cleaned_and_it_is_filed(runner, site):
    # On PostgreSQL a NUL anywhere once meant "database unavailable": retried for days.
    msg = mail(
        "=?utf-8?q?Acme=00_Owner=1B?= <owner@acme.test>", "-", "Line one\x00\nline two\x1b[2J"
    )
    msg.add_attachment(png_bytes(), maintype="image", subtype="png", filename="a\x1bb\x00.png")
    del msg["Subject"]  # EmailMessage would decode it and write the line break out raw
    subject = b"Subject: =?utf-8?q?Logo=0D=0ABcc:_x@evil.test=00?=\r\n"
    result = pipe(runner, subject + msg.as_bytes())
    assert result.exit_code == 0 and "opened SUP-" in result.output, result.output
    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.subject == "Logo Bcc: x@evil.test"
    assert ticket.requester_name == "Acme Owner"
    assert ticket.description == "Line one\nline two[2J"
    assert [a.filename for a in ticket.attachments] == ["a b .png"]
