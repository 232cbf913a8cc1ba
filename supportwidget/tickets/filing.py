"""Ticket workflows: every change to a ticket goes through a function here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from supportwidget.models import (
    Attachment,
    Notification,
    Site,
    Ticket,
    TicketEvent,
    db,
    parse_id,
    utcnow,
)
from supportwidget.notify import messages, outbox
from supportwidget.platform import database
from supportwidget.platform.screenshots import Screenshot, store
from supportwidget.sla import schedules as sla
from supportwidget.vocab import TicketKind


@dataclass
class Request:
    """What a requester sent, already validated by a form, the API or mail-in."""

    subject: str
    description: str
    name: str
    email: str
    needed_by: date | None = None
    urgency_note: str | None = None
    page_meta: dict[str, Any] = field(default_factory=dict)
    screenshots: list[Screenshot] = field(default_factory=list)
    nonce: str | None = None
    identity_verified: bool = False
    locale: str | None = None
    # How mail-in checked the sender ("authenticated", "not verified" …); None for forms.
    sender_check: str | None = None


def find_by_nonce(nonce: str | None) -> Ticket | None:
    """Return the ticket already made from this form token, if any."""
    if not nonce:
        return None
    return db.session.scalar(sa.select(Ticket).where(Ticket.form_nonce == nonce))


def find_by_reference(reference: str) -> Ticket | None:
    """Return the ticket for 'SUP-12' (any case), or None."""
    number = parse_id(reference.strip().upper().removeprefix("SUP-"))
    return None if number is None else db.session.get(Ticket, number)


def new_ticket(site: Site, request: Request, **fields: Any) -> Ticket:
    """Add a ticket with its attachments and 'created' event to the session."""
    folder = current_app.config["UPLOAD_FOLDER"]
    ticket = Ticket(
        site=site,
        subject=request.subject.strip(),
        description=request.description.strip(),
        requester_name=request.name.strip(),
        requester_email=request.email.strip(),
        needed_by=request.needed_by,
        urgency_note=(request.urgency_note or "").strip() or None,
        page_meta=request.page_meta,
        form_nonce=request.nonce,
        identity_verified=request.identity_verified,
        locale=request.locale,
        created_at=utcnow(),
        # Empty, not unloaded: reading them (e-mails, answer page) needs no query.
        attachments=[],
        events=[],
        **fields,
    )
    db.session.add(ticket)
    for shot in request.screenshots:
        store(shot, folder)
        ticket.attachments.append(
            Attachment(
                filename=shot.filename,
                content_type=shot.content_type,
                sha256=shot.sha256,
                size=shot.size,
                width=shot.width,
                height=shot.height,
            )
        )
    detail = {"kind": ticket.kind}
    if request.sender_check is not None:
        detail["sender"] = request.sender_check
    ticket.events.append(TicketEvent(kind="created", detail=detail))
    return ticket


Built = tuple[Ticket, list[Notification]]


def file_once(nonce: str | None, build: Callable[[], Built]) -> tuple[Ticket, bool]:
    """Run `build` (add a ticket and its outbox rows), commit it all, then queue the rows.

    When the same form token is already filed, or wins a race with us, return that
    ticket instead: a double submission never makes a second ticket or e-mail. The UNIQUE
    form_nonce decides (the ticket's INSERT is the build's first write), so a first
    submission, nearly every one, pays no look-up.
    """
    try:
        with database.write_lock():
            ticket, rows = build()
            db.session.flush()
            due = outbox.due(rows)
            # The answer page reads back what was just written: keep it loaded.
            database.commit_keeping_loaded()
    except IntegrityError:
        db.session.rollback()
        existing = find_by_nonce(nonce)
        if existing is None:
            raise
        return existing, False
    outbox.schedule_due(due)
    return ticket, True


def open_standard_request(site: Site, request: Request) -> Ticket:
    """File a standard request and queue its e-mails, all in one transaction."""

    def build() -> Built:
        ticket = new_ticket(site, request, kind=TicketKind.STANDARD)
        sla.schedule_new(ticket, ticket.created_at)  # before the INSERT: one write, not two
        return ticket, notify_new_request(ticket)

    return file_once(request.nonce, build)[0]


def notify_new_request(ticket: Ticket) -> list[Notification]:
    """Queue the staff e-mails and the requester's confirmation for a new request."""
    rows = messages.email_staff(
        ticket,
        "staff_new_ticket",
        "staff-new",
        with_attachments=True,
    )
    rows.append(messages.email(ticket, "requester_confirmation", ticket.requester_email, "confirm"))
    return rows
