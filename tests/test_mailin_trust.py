"""Mail-in trusts only what our MTA authenticated; the rest is held for staff, never answered.

Mail goes through the real `mail-in` command; what the service sends back is read from the
aiosmtpd server; staff accept or drop held mail through the real dashboard with CSRF.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_mailin import events, mail, pipe

from supportwidget.models import HeldMessage, Notification, Staff, Ticket, db
from supportwidget.tickets import actions as updates

from test_dashboard import csrf_from, login, new_request, staff  # noqa: F401 - fixture

OUR_MTA = "mx.agency.test"


@pytest.fixture
def app_config():
    return {"MAILIN_AUTHSERV_ID": OUR_MTA}


def authenticated(msg, results, authserv_id=OUR_MTA):
    """Prepend an Authentication-Results header as an MTA does (topmost = newest)."""
    headers = [("Authentication-Results", f"{authserv_id}; {results}"), *msg.items()]
    for name in {name for name, _ in headers}:
        del msg[name]
    for name, value in headers:
        msg[name] = value
    return msg


def resolved_ticket(site, smtp_server):
    ticket = new_request(site)
    updates.change_status(ticket, db.session.scalar(sa.select(Staff)), "resolved")
    smtp_server.wait_for(5)
    smtp_server.clear()
    return ticket


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_forged_requester_from_is_held_not_threaded(runner, site, smtp_server):
    ticket = resolved_ticket(site, smtp_server)
    forged = mail("Jane Owner <jane@example.com>", f"Re: [{ticket.reference}] reopen", "Pay me.")
    result = pipe(runner, forged)
    assert result.exit_code == 0 and f"held for staff: reply to {ticket.reference}" in result.output
    db.session.refresh(ticket)
    assert ticket.status == "resolved" and events(ticket, "client_reply") == []
    (held,) = db.session.scalars(sa.select(HeldMessage)).all()
    assert (held.sender, held.subject) == ("jane@example.com", f"Re: [{ticket.reference}] reopen")
    assert held.evidence == f"no Authentication-Results from {OUR_MTA}"
    # Nothing goes back to an address that may be forged, and the MTA's retry is held once.
    assert pipe(runner, forged).output.strip().endswith("duplicate")
    assert count(HeldMessage) == 1 and count(Notification) == 5
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "headers",
    [
        # The attacker's own header, with another authserv-id.
        [("evil.test", "dmarc=pass header.from=example.com")],
        # Our id in a header the message arrived with, below the one our MTA prepended.
        [(OUR_MTA, "dmarc=fail header.from=example.com"), (OUR_MTA, "dmarc=pass")],
        # Passing, but for the attacker's domain, a look-alike, or a bare top-level domain.
        [(OUR_MTA, "dkim=pass header.d=evil.test; spf=pass smtp.mailfrom=x@evil.test")],
        [(OUR_MTA, "dkim=pass header.d=example.com.evil.test")],
        [(OUR_MTA, "dkim=pass header.d=com; spf=pass smtp.mailfrom=com")],
        [(OUR_MTA, "dmarc=pass header.from=evil.test")],
        [(OUR_MTA, "dkim=fail (bad signature) header.d=example.com; spf=softfail")],
        [(OUR_MTA, "none")],
    ],
)
def test_mail_our_mta_did_not_authenticate_threads_nothing(runner, site, smtp_server, headers):
    ticket = resolved_ticket(site, smtp_server)
    forged = mail("jane@example.com", f"Re: [{ticket.reference}] hi")
    for authserv_id, results in reversed(headers):
        authenticated(forged, results, authserv_id)
    assert "held for staff" in pipe(runner, forged).output
    db.session.refresh(ticket)
    assert ticket.status == "resolved" and events(ticket, "client_reply") == []


@pytest.mark.parametrize(
    "results",
    [
        "dmarc=pass (p=reject) header.from=example.com",
        "dkim=pass (2048-bit key) header.d=example.com header.s=s1; spf=fail",
        'dkim=pass header.i="@example.com"',
        "spf=pass smtp.mailfrom=bounces@mail.example.com; dkim=none",
        "dkim=pass header.d=EXAMPLE.com.",
    ],
)
def test_an_authenticated_reply_threads_and_reopens(runner, site, smtp_server, results):
    ticket = resolved_ticket(site, smtp_server)
    msg = authenticated(mail("jane@example.com", f"Re: [{ticket.reference}] still broken"), results)
    result = pipe(runner, msg)
    assert f"reply added to {ticket.reference}" in result.output, result.output
    db.session.refresh(ticket)
    (event,) = events(ticket, "client_reply")
    assert ticket.status == "in_progress" and event.detail["sender"] == "authenticated"


def test_a_forged_client_contact_opens_no_ticket(runner, site, smtp_server):
    result = pipe(runner, mail("Acme Owner <owner@acme.test>", "Please add a new admin user"))
    assert result.exit_code == 0 and "held for staff: new ticket for Acme Shop" in result.output
    assert count(Ticket) == 0 and smtp_server.messages == []
    genuine = authenticated(
        mail("owner@acme.test", "Please add an editor"), "dmarc=pass header.from=acme.test"
    )
    assert "opened SUP-" in pipe(runner, genuine).output
    created = db.session.scalar(sa.select(Ticket)).events[0]
    assert created.detail["sender"] == "authenticated"


def test_no_refusal_goes_to_an_unauthenticated_stranger(runner, site, smtp_server):
    result = pipe(runner, mail("someone@elsewhere.test", "Cheap pills at pills.example"))
    assert result.exit_code == 0 and "dropped: sender not authenticated" in result.output
    assert count(HeldMessage) == 0 and count(Notification) == 0
    # An authenticated stranger is told, without their own words echoed back.
    msg = authenticated(
        mail("someone@elsewhere.test", "Cheap pills at pills.example"),
        "dkim=pass header.d=elsewhere.test",
    )
    assert "refused" in pipe(runner, msg).output
    (refusal,) = smtp_server.wait_for(1)
    assert refusal["To"] == "someone@elsewhere.test"
    text = refusal.get_body(("plain",)).get_content() + str(refusal["Subject"])
    assert "no ticket was opened" in text and "pills" not in text


def held_page(client):
    return client.get("/dashboard/held").get_data(as_text=True)


@pytest.mark.usefixtures("staff")
def test_staff_accept_a_held_reply_and_it_threads_as_if_authenticated(
    client, runner, site, smtp_server
):
    ticket = resolved_ticket(site, smtp_server)
    held_mail = mail("jane@example.com", f"Re: [{ticket.reference}] x", "<b>It broke again</b>")
    pipe(runner, held_mail)
    held = db.session.scalar(sa.select(HeldMessage))
    login(client, "bob@agency.test")
    assert 'href="/dashboard/held">Held mail (1)</a>' in client.get("/dashboard/").get_data(
        as_text=True
    )
    page = held_page(client)
    assert "jane@example.com" in page and f"reply to {ticket.reference}" in page
    assert "&lt;b&gt;It broke again&lt;/b&gt;" in page  # the text, escaped, to judge by
    assert f"no Authentication-Results from {OUR_MTA}" in page
    # Without the page's CSRF token nothing happens.
    assert client.post(f"/dashboard/held/{held.id}/accept").status_code == 400
    response = client.post(
        f"/dashboard/held/{held.id}/accept", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 303
    db.session.expire_all()
    (event,) = events(ticket, "client_reply")
    assert event.detail["sender"] == "accepted by Bob"
    assert ticket.status == "in_progress" and count(HeldMessage) == 0
    assert "duplicate" in pipe(runner, held_mail).output  # redelivered: filed already
    staff_mails = smtp_server.wait_for(3)
    assert all("It broke again" in m.get_body(("plain",)).get_content() for m in staff_mails)
    ticket_page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert "sender accepted by Bob" in ticket_page


@pytest.mark.usefixtures("staff")
def test_staff_accept_a_held_client_mail_and_it_opens_a_ticket(client, runner, site, smtp_server):
    pipe(runner, mail("owner@acme.test", "Swap the logo", "The new logo is attached."))
    held = db.session.scalar(sa.select(HeldMessage))
    login(client, "alice@agency.test")
    page = held_page(client)
    client.post(f"/dashboard/held/{held.id}/accept", data={"csrf_token": csrf_from(page)})
    ticket = db.session.scalar(sa.select(Ticket))
    assert (ticket.subject, ticket.requester_email) == ("Swap the logo", "owner@acme.test")
    assert any(m["To"] == "owner@acme.test" for m in smtp_server.wait_for(4))


@pytest.mark.usefixtures("staff")
def test_staff_drop_held_mail_and_nothing_is_filed(client, runner, site, smtp_server):
    ticket = resolved_ticket(site, smtp_server)
    spam = mail("jane@example.com", f"Re: [{ticket.reference}] spam")
    pipe(runner, spam)
    held = db.session.scalar(sa.select(HeldMessage))
    login(client, "bob@agency.test")
    page = held_page(client)
    response = client.post(f"/dashboard/held/{held.id}/drop", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    assert count(HeldMessage) == 0 and events(ticket, "client_reply") == []
    assert "No held mail" in held_page(client)
    again = client.post(f"/dashboard/held/{held.id}/drop", data={"csrf_token": csrf_from(page)})
    assert again.status_code == 404
    # The MTA delivers the same message again: it is not held a second time.
    assert pipe(runner, spam).output.strip().endswith("duplicate")
    assert count(HeldMessage) == 0


def test_held_mail_is_for_signed_in_staff_only(client, runner, site):
    pipe(runner, mail("owner@acme.test", "Swap the logo"))
    held = db.session.scalar(sa.select(HeldMessage))
    assert client.get("/dashboard/held").status_code == 302
    assert client.post(f"/dashboard/held/{held.id}/accept").status_code in (302, 400)
    assert count(HeldMessage) == 1 and count(Ticket) == 0
