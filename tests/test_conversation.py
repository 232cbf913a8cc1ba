"""Conversations through the ticket: staff replies by e-mail, the requester's status page
thread and answers, internal notes, the assignee and the "mine" filter."""

from __future__ import annotations

import io
import re
from email.utils import parseaddr

import pytest
import sqlalchemy as sa
from PIL import Image
from test_mailin import mail, pipe

from supportwidget.models import Attachment, SlaPause, Staff, TicketEvent, db
from supportwidget.platform import tokens
from supportwidget.tickets import actions as updates
from supportwidget.tickets import conversation

from test_dashboard import csrf_from, login, new_request, sla_site, staff  # noqa: F401 - a fixture

JANE = "jane@example.com"


def status_path(ticket):
    return f"/t/{tokens.status_token(ticket.id)}"


def reply_token(client, ticket):
    page = client.get(status_path(ticket)).get_data(as_text=True)
    match = re.search(r'name="form_token" type="hidden" value="([^"]+)"', page)
    assert match, "no reply form on the status page"
    return match.group(1)


def png(colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def by_kind(ticket, kind):
    return db.session.scalars(
        sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == kind)
    ).all()


def member(name):
    return db.session.scalar(sa.select(Staff).where(Staff.name == name))


def support_address(app):
    return parseaddr(app.config["MAIL_DEFAULT_SENDER"])[1]


def test_staff_reply_by_email_reaches_the_requester_through_the_ticket(
    app, runner, site, smtp_server
):
    ticket = new_request(site)
    sent = smtp_server.wait_for(4)
    staff_mail = next(m for m in sent if m["To"] == "bob@agency.test")
    # Replying goes to the support mailbox (From), never straight to the requester.
    assert staff_mail["Reply-To"] is None
    assert support_address(app) in staff_mail["From"]
    assert f"[{ticket.reference}]" in staff_mail["Subject"]
    smtp_server.clear()
    answer = mail(
        "Bob <Bob@Agency.test>",
        "Re: " + staff_mail["Subject"],
        "Which browser do you use?\n\nOn Tue, 1 Dec 2026 at 10:00, Support wrote:\n> The form\n",
        In_Reply_To=staff_mail["Message-ID"],
        References=staff_mail["References"] + " " + staff_mail["Message-ID"],
    )
    result = pipe(runner, answer)
    assert result.exit_code == 0, result.output
    assert f"staff reply by bob@agency.test sent on {ticket.reference}" in result.output
    db.session.expire_all()
    (event,) = by_kind(ticket, "reply")
    assert event.staff.name == "Bob" and event.detail["via"] == "e-mail"
    assert event.detail["body"] == "Which browser do you use?"  # quoted text stripped
    assert ticket.first_responded_at is not None and ticket.status == "in_progress"
    (to_jane,) = smtp_server.wait_for(1)
    assert to_jane["To"] == JANE and support_address(app) in to_jane["From"]
    assert to_jane["Reply-To"] is None
    assert "Which browser do you use?" in to_jane.get_body(("plain",)).get_content()
    assert "> The form" not in to_jane.get_body(("plain",)).get_content()
    # The MTA delivers it again: the requester is not asked twice.
    assert pipe(runner, answer).exit_code == 0
    assert len(by_kind(ticket, "reply")) == 1


def test_a_disabled_staff_member_cannot_answer_by_email(runner, site, smtp_server):
    ticket = new_request(site)
    staff_mail = next(m for m in smtp_server.wait_for(4) if m["To"] == "bob@agency.test")
    member("Bob").active = False
    db.session.commit()
    result = pipe(runner, mail("bob@agency.test", staff_mail["Subject"], "Hi"))
    assert "staff reply" not in result.output
    assert by_kind(ticket, "reply") == []


def test_status_page_shows_the_conversation_and_no_stale_first_response(client, site):
    sla_site(site)
    ticket = new_request(site)
    page = client.get(status_path(ticket)).get_data(as_text=True)
    assert "First response by" in page
    updates.reply(ticket, member("Bob"), "Which browser do you use?")
    updates.change_status(ticket, member("Bob"), "waiting_on_client")
    page = client.get(status_path(ticket)).get_data(as_text=True)
    assert "The contact form shows an error" in page  # the request opens the thread
    assert "Which browser do you use?" in page and "Bob (support)" in page
    assert "First response by" not in page
    assert "Resolution target:" in page and "The clock is paused" in page


def test_requester_answers_on_the_status_page_with_a_screenshot(client, site, smtp_server):
    ticket = new_request(site)
    updates.reply(ticket, member("Bob"), "Which browser do you use?")
    updates.change_status(ticket, member("Bob"), "waiting_on_client")
    smtp_server.wait_for(6)
    smtp_server.clear()
    token = reply_token(client, ticket)
    data = {
        "form_token": token,
        "body": "Safari 17 on a Mac.",
        "screenshots": (io.BytesIO(png()), "safari.png"),
    }
    response = client.post(status_path(ticket), data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your reply was added" in page and "Safari 17 on a Mac." in page
    db.session.expire_all()
    (event,) = by_kind(ticket, "client_reply")
    assert event.detail["via"] == "status page"
    (shot,) = db.session.scalars(sa.select(Attachment).where(Attachment.event_id == event.id))
    assert shot.filename == "safari.png" and (shot.width, shot.height) == (40, 30)
    assert ticket.status == "in_progress"
    pause = db.session.scalar(sa.select(SlaPause).where(SlaPause.ticket_id == ticket.id))
    assert pause.ended_at is not None  # the paused clock runs again
    told = smtp_server.wait_for(3)  # nobody took it: every staff recipient
    assert {m["To"] for m in told} == {"alice@agency.test", "bob@agency.test", "inbox@agency.test"}
    assert all("Safari 17 on a Mac." in m.get_body(("plain",)).get_content() for m in told)
    assert all(m["Reply-To"] is None for m in told)
    # The same form sent twice (a double click, a reload) is one reply.
    again = {"form_token": token, "body": "Safari 17 on a Mac."}
    assert client.post(status_path(ticket), data=again).status_code == 303
    assert len(by_kind(ticket, "client_reply")) == 1


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"body": "Safari"}, 400, "security token is invalid"),
        ({"body": "Safari", "form_token": "forged"}, 400, "security token is invalid"),
        ({"body": "   "}, 422, "Please write your reply."),
    ],
)
def test_status_page_refuses_a_reply_it_cannot_take(client, site, data, status, message):
    ticket = new_request(site)
    if data.get("body", "").strip() == "":
        data = {**data, "form_token": reply_token(client, ticket)}
    response = client.post(status_path(ticket), data=data)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert by_kind(ticket, "client_reply") == []


def test_a_form_from_one_ticket_cannot_reply_on_another(client, site):
    first, second = new_request(site), new_request(site, subject="Another problem")
    token = reply_token(client, first)
    response = client.post(status_path(second), data={"form_token": token, "body": "Hi"})
    assert response.status_code == 400
    assert by_kind(second, "client_reply") == []


@pytest.mark.usefixtures("staff")
def test_internal_notes_never_reach_the_requester(client, site, smtp_server):
    ticket = new_request(site)
    smtp_server.wait_for(4)
    smtp_server.clear()
    login(client, "bob@agency.test")
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    response = client.post(
        f"/dashboard/tickets/{ticket.reference}",
        data={"csrf_token": csrf_from(page), "internal_note": "Client owes us two invoices."},
    )
    assert response.status_code == 303
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert "Internal note" in page and "Client owes us two invoices." in page
    updates.reply(ticket, member("Bob"), "We are on it.")
    to_jane = [m for m in smtp_server.wait_for(1) if m["To"] == JANE]
    assert to_jane and all("invoices" not in m.as_string() for m in to_jane)
    public = client.get(status_path(ticket)).get_data(as_text=True)
    assert "We are on it." in public and "invoices" not in public


@pytest.mark.usefixtures("staff")
def test_take_it_assigns_and_only_the_assignee_hears_replies(client, site, smtp_server):
    mine, other = new_request(site), new_request(site, subject="Menu overlaps the logo")
    login(client, "bob@agency.test")
    page = client.get(f"/dashboard/tickets/{mine.reference}").get_data(as_text=True)
    assert "Take it" in page
    response = client.post(
        f"/dashboard/tickets/{mine.reference}",
        data={"csrf_token": csrf_from(page), "assignee": "me"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert mine.assignee.name == "Bob"
    queue = client.get("/dashboard/?assignee=me").get_data(as_text=True)
    assert mine.reference in queue and other.reference not in queue
    assert other.reference in client.get("/dashboard/").get_data(as_text=True)
    smtp_server.wait_for(8)
    smtp_server.clear()
    conversation.client_reply(mine, "It works now, thanks.", JANE, "status link", via="status page")
    told = smtp_server.wait_for(1)
    assert [m["To"] for m in told] == ["bob@agency.test"]
    # An assignee by id, and a refusal for someone who does not exist.
    alice = member("Alice")
    page = client.get(f"/dashboard/tickets/{mine.reference}").get_data(as_text=True)
    client.post(
        f"/dashboard/tickets/{mine.reference}",
        data={"csrf_token": csrf_from(page), "assignee": str(alice.id)},
    )
    db.session.expire_all()
    assert mine.assignee.name == "Alice"
    page = client.get(f"/dashboard/tickets/{mine.reference}").get_data(as_text=True)
    refused = client.post(
        f"/dashboard/tickets/{mine.reference}",
        data={"csrf_token": csrf_from(page), "assignee": "999"},
    )
    assert refused.status_code == 422 and "no staff member" in refused.get_data(as_text=True)
    assert client.get("/dashboard/?assignee=bob").status_code == 400


def test_an_email_reply_from_the_requester_lands_in_the_status_page_thread(
    runner, client, site, smtp_server
):
    ticket = new_request(site)
    confirmation = next(m for m in smtp_server.wait_for(4) if m["To"] == JANE)
    reply = mail(
        JANE,
        "Re: " + confirmation["Subject"],
        "Here is a screenshot.",
        In_Reply_To=confirmation["Message-ID"],
    )
    reply.add_attachment(png(), maintype="image", subtype="png", filename="error.png")
    assert pipe(runner, reply).exit_code == 0
    page = client.get(status_path(ticket)).get_data(as_text=True)
    assert "Here is a screenshot." in page and "Screenshots attached: 1" in page
