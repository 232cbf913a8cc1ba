"""E-mail to an address nobody vouched for repeats none of the sender's own words.

Anyone can type someone else's address into a public form: our confirmation would then
carry their text to a stranger. Unless the address is a client contact or a signed
identity, requester mail says only the reference, what to expect and the status link.
Mails are read back from the real SMTP server.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Staff, Ticket, db
from supportwidget.tickets import actions as updates

from conftest import form_token, standard_fields
from test_dashboard import new_emergency, new_request

SPAM = {
    "subject": "Cheap pills at pills.example",
    "description": "Buy now at pills.example, best prices.",
    "name": "Winner, claim your prize at pills.example",
}


def everything(message) -> str:
    """Return a received mail's subject, text and HTML as one string."""
    parts = [message.get_body((kind,)).get_content() for kind in ("plain", "html")]
    return " ".join([str(message["Subject"]), *parts])


def mails_to(smtp_server, address, count):
    received = smtp_server.wait_for(count)
    return [m for m in received if m["To"] == address]


def test_the_form_confirmation_to_an_unverified_address_repeats_nothing(client, site, smtp_server):
    path = f"/s/{site.site_key}"
    data = standard_fields(**SPAM, form_token=form_token(client, path))
    assert client.post(path, data=data).status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    (confirmation,) = mails_to(smtp_server, "jane@example.com", 4)
    assert confirmation["Subject"] == f"[{ticket.reference}] We have your request"
    text = everything(confirmation)
    assert "pills" not in text
    assert ticket.reference in text and "number 1 in the queue" in text and "/t/" in text
    staff_mail = next(m for m in smtp_server.messages if m["To"] == "bob@agency.test")
    assert "pills" in everything(staff_mail)  # staff see everything


def act_as_staff(ticket, action):
    """Make the workflow send one more requester e-mail."""
    bob = db.session.scalar(sa.select(Staff).where(Staff.name == "Bob"))
    if action == "status":
        updates.change_status(ticket, bob, "waiting_on_client")
    elif action == "reply":
        updates.reply(ticket, bob, "We are looking into it.")
    elif action == "acknowledge":
        emergencies.acknowledge(ticket, bob, via="dashboard")
    else:
        updates.triage(ticket, bob, "downgrade", "A slow page is not an emergency.")


@pytest.mark.parametrize("action", ["status", "reply", "acknowledge", "downgrade"])
def test_later_mail_to_an_unverified_address_repeats_nothing(site, smtp_server, action):
    if action in ("acknowledge", "downgrade"):
        ticket = new_emergency(site, **SPAM)
        ticket.callback_phone = "pills.example"  # stored before one-line checks existed
        db.session.commit()
    else:
        ticket = new_request(site, **SPAM)
    smtp_server.wait_for(4)
    smtp_server.clear()
    act_as_staff(ticket, action)
    (mail,) = mails_to(smtp_server, "jane@example.com", 1)
    text = everything(mail)
    assert "pills" not in text
    assert ticket.reference in text and "/t/" in text


@pytest.mark.parametrize("requester", ["client contact", "signed identity"])
def test_mail_to_a_vouched_for_address_keeps_the_subject_and_name(site, smtp_server, requester):
    if requester == "client contact":
        ticket = new_request(site, **SPAM, email="owner@acme.test")
    else:
        ticket = new_request(site, **SPAM, identity_verified=True)
    (confirmation,) = mails_to(smtp_server, ticket.requester_email, 4)
    expected = f"[{ticket.reference}] We have your request: {SPAM['subject']}"
    assert confirmation["Subject"] == expected
    assert f"Hello {SPAM['name']}," in everything(confirmation)
