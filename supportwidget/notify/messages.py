"""Composers: one per event, rendering templates into outbox rows; rows into e-mails."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from flask import current_app, render_template
from flask_mail import Message

from supportwidget.emergencies.state import emergency_state
from supportwidget.models import Notification, Staff, Ticket, db
from supportwidget.notify.gsm import SMS_LIMIT, fit, gsm_length, sms_text
from supportwidget.notify.mime import LeanMessage
from supportwidget.platform import i18n, tokens
from supportwidget.platform.screenshots import stored_path
from supportwidget.sla.schedules import expectation, ticket_zone
from supportwidget.vocab import NotificationChannel

# Templates whose reader is the requester (the rest go to staff and stay English).
REQUESTER_TEMPLATES = ("requester_",)


def public_url(path: str) -> str:
    """Return an absolute URL on the public service address."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


def _mail_domain() -> str:
    return urlparse(current_app.config["PUBLIC_URL"]).hostname or "localhost"


def _install_tag() -> str:
    # Keeps Message-IDs of two installations (or a reset database) apart.
    return hashlib.sha256(current_app.config["SECRET_KEY"].encode()).hexdigest()[:8]


def root_message_id(ticket_id: int) -> str:
    """Return the ticket's thread root: every e-mail about the ticket references it."""
    return f"<SUP-{ticket_id}.{_install_tag()}@{_mail_domain()}>"


def message_id(row: Notification) -> str:
    """Return a Message-ID stable per outbox row, so a resend is recognisably the same."""
    return f"<n{row.id}.SUP-{row.ticket_id}.{_install_tag()}@{_mail_domain()}>"


def staff_recipients() -> list[tuple[str, Staff | None]]:
    """Return every active staff member plus STAFF_NOTIFY_EMAILS, each address once."""
    seen: dict[str, Staff | None] = {}
    for member in db.session.scalars(sa.select(Staff).where(Staff.active).order_by(Staff.id)):
        seen.setdefault(member.email.lower(), member)
    for address in current_app.config["STAFF_NOTIFY_EMAILS"]:
        seen.setdefault(address.lower(), None)
    return list(seen.items())


def ticket_context(ticket: Ticket, **extra: Any) -> dict[str, Any]:
    """Return what every ticket template may use."""
    if ticket.id is None:
        db.session.flush()  # links and Message-IDs need the ticket's number
    return {
        "ticket": ticket,
        "site": ticket.site,
        "client": ticket.site.client,
        "status_url": public_url(f"/t/{tokens.status_token(ticket.id)}"),
        "ticket_url": public_url(f"/dashboard/tickets/{ticket.reference}"),
        "emergency_url": public_url(f"/s/{ticket.site.site_key}/emergency"),
        "agency": current_app.config["AGENCY_NAME"],
        "mail_domain": _mail_domain(),
        # Whether requester mail may repeat their own words (subject, name, phone).
        "vouched": ticket.requester_vouched_for,
        # Only the requester's mail says what to expect; it costs a queue count, so not for staff.
        **({"expectation": expectation(ticket)} if extra.pop("for_requester", False) else {}),
        # Where an emergency stands, told the same way everywhere; None for other tickets.
        "emergency": emergency_state(ticket),
        # The zone every time in the mail is told in, named: the plan's, else the agency's.
        "zone": ticket_zone(ticket),
        **extra,
    }


def email(
    ticket: Ticket,
    template: str,
    recipient: str,
    purpose: str,
    staff: Staff | None = None,
    **extra: Any,
) -> Notification:
    """Render templates/email/<template>.{txt,html} into an outbox row (not yet committed).

    Requester e-mail is written in the ticket's language; staff e-mail is always English.
    """
    rendered = render_email(ticket, template, recipient=recipient, staff=staff, **extra)
    return add_email(ticket, rendered, recipient, purpose, staff, **extra)


def one_line_subject(text: str) -> str:
    """Return a rendered subject on one line, cut to what the outbox column holds.

    A long ticket subject plus long client and site names can exceed it; PostgreSQL would
    refuse the row and with it the whole ticket.
    """
    column = Notification.__table__.c.subject.type
    assert isinstance(column, sa.String) and column.length is not None  # String(n) in models.py
    limit = column.length
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def render_email(ticket: Ticket, template: str, **extra: Any) -> tuple[str, str, str]:
    """Return the subject, text and HTML of an e-mail about a ticket."""
    to_requester = template.startswith(REQUESTER_TEMPLATES)
    # Rendering only reads: don't flush the session on every lazy load it triggers.
    with i18n.language(ticket.locale if to_requester else None), db.session.no_autoflush:
        context = ticket_context(ticket, for_requester=to_requester, **extra)
        subject = render_template(f"email/{template}.subject.txt", **context)
        body_text = render_template(f"email/{template}.txt", **context)
        body_html = render_template(f"email/{template}.html", **context)
    return one_line_subject(subject), body_text, body_html


def add_email(
    ticket: Ticket,
    rendered: tuple[str, str, str],
    recipient: str,
    purpose: str,
    staff: Staff | None = None,
    **extra: Any,
) -> Notification:
    """Add an outbox row carrying a rendered e-mail about a ticket to the session."""
    subject, body_text, body_html = rendered
    # By id, not relationship: appending to ticket.notifications would load the collection.
    row = Notification(
        ticket_id=ticket.id,
        channel=NotificationChannel.EMAIL,
        recipient=recipient,
        staff_id=staff.id if staff else None,
        purpose=purpose,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        reply_to=extra.get("reply_to"),
        with_attachments=bool(extra.get("with_attachments")),
    )
    db.session.add(row)
    return row


def notice(template: str, recipient: str, purpose: str, **context: Any) -> Notification:
    """Render an e-mail about no particular ticket into an outbox row (not yet committed)."""
    context = {"agency": current_app.config["AGENCY_NAME"], "recipient": recipient, **context}
    # English: notices go to staff, or to a stranger whose language we do not know.
    with i18n.language(None):
        subject = render_template(f"email/{template}.subject.txt", **context)
        body_text = render_template(f"email/{template}.txt", **context)
        body_html = render_template(f"email/{template}.html", **context)
    row = Notification(
        channel=NotificationChannel.EMAIL,
        recipient=recipient,
        purpose=purpose,
        subject=one_line_subject(subject),
        body_text=body_text,
        body_html=body_html,
    )
    db.session.add(row)
    return row


def sms(
    ticket: Ticket,
    template: str,
    staff: Staff,
    purpose: str,
    shrink: dict[str, str] | None = None,
    **extra: Any,
) -> Notification:
    """Render templates/sms/<template>.txt into an SMS outbox row that fits one GSM-7 SMS.

    Only the site name, the subject and the `shrink` texts (each a whole phrase, such as
    "check: 200 OK in 0.4 s") shrink to fit, the longest first: the reference, "Reply ACK n"
    and the acknowledge link are what the person paged needs, and they are always kept whole.
    """
    parts = {"site_name": ticket.site.name, "subject": ticket.subject, **(shrink or {})}

    def render(values: list[str]) -> str:
        # Pages go to staff: English, whichever language the requester's form was in.
        with i18n.language(None):
            context = ticket_context(
                ticket, staff=staff, **dict(zip(parts, values, strict=True)), **extra
            )
            return " ".join(render_template(f"sms/{template}.txt", **context).split())

    texts = [" ".join(text.split()) for text in parts.values()]
    # Rendered empty, each part may have folded away the one space it brings back.
    budget = SMS_LIMIT - gsm_length(render([""] * len(texts))) - len(texts)
    return _to_phone(
        ticket, NotificationChannel.SMS, staff, purpose, sms_text(render(fit(texts, budget)))
    )


def _to_phone(
    ticket: Ticket, channel: NotificationChannel, staff: Staff, purpose: str, text: str
) -> Notification:
    """Add an outbox row to a staff member's phone (an SMS or a call) to the session."""
    row = Notification(
        ticket_id=ticket.id,
        channel=channel,
        recipient=staff.phone or "",
        staff_id=staff.id,
        purpose=purpose,
        body_text=text,
    )
    db.session.add(row)
    return row


def spoken(ticket: Ticket, template: str, **extra: Any) -> str:
    """Render templates/voice/<template>.txt: what a call says, in English, on one line."""
    with i18n.language(None), db.session.no_autoflush:
        context = ticket_context(ticket, **extra)
        return " ".join(render_template(f"voice/{template}.txt", **context).split())


def call(ticket: Ticket, template: str, staff: Staff, purpose: str, **extra: Any) -> Notification:
    """Add a call outbox row to a staff member's phone (what it says is decided on answer)."""
    said = spoken(ticket, template, staff=staff, **extra)
    return _to_phone(ticket, NotificationChannel.VOICE, staff, purpose, said)


def email_message(row: Notification) -> Message:
    """Build the e-mail for an outbox row, threaded on its ticket."""
    root = root_message_id(row.ticket_id) if row.ticket_id is not None else None
    msg = LeanMessage(
        message_id(row),
        subject=row.subject or "",
        recipients=[row.recipient],
        body=row.body_text,
        html=row.body_html,
        reply_to=row.reply_to,
        extra_headers={"References": root, "In-Reply-To": root} if root else None,
    )
    if row.with_attachments and row.ticket is not None:
        folder = current_app.config["UPLOAD_FOLDER"]
        for att in row.ticket.attachments:
            msg.attach(
                att.filename,
                att.content_type,
                stored_path(att.sha256, folder).read_bytes(),
                "inline",
                headers={"Content-ID": f"<{att.sha256}@{_mail_domain()}>"},
            )
    return msg


def email_staff(ticket: Ticket, template: str, purpose: str, **extra: Any) -> list[Notification]:
    """Queue the same e-mail about a ticket to every staff recipient, rendered once.

    The text names no recipient; a per-person e-mail (an acknowledge link) uses email().
    """
    rendered = render_email(ticket, template, **extra)
    return [
        add_email(ticket, rendered, address, purpose, staff=member, **extra)
        for address, member in staff_recipients()
    ]
