"""The conversation on a ticket: the requester's replies, internal notes, who took it.

Public replies (staff's `reply` events, the requester's `client_reply` events) are what the
requester sees on /t/<token>; `note` events are for staff only and never leave the dashboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from supportwidget.models import (
    Attachment,
    HandledMessage,
    Notification,
    Staff,
    Ticket,
    TicketEvent,
    db,
    utcnow,
)
from supportwidget.notify import messages, outbox
from supportwidget.platform.screenshots import Screenshot, store
from supportwidget.sla import schedules as sla
from supportwidget.tickets.actions import MAX_BODY, UpdateError
from supportwidget.vocab import TicketStatus

MAX_NOTE = 5_000
# Events the requester reads on their status page; everything else stays with staff.
PUBLIC_EVENTS = ("reply", "client_reply")


@dataclass(frozen=True)
class Message:
    """One public message of the conversation as the requester reads it."""

    at: datetime
    from_requester: bool
    author: str
    body: str
    screenshots: int


def public_thread(ticket: Ticket) -> list[Message]:
    """Return the request itself and every public reply from either side, oldest first."""
    thread = [
        Message(
            ticket.created_at,
            True,
            ticket.requester_name,
            ticket.description,
            len([a for a in ticket.attachments if a.event_id is None]),
        )
    ]
    for event in ticket.events:
        if event.kind not in PUBLIC_EVENTS:
            continue
        detail = event.detail or {}
        from_requester = event.kind == "client_reply"
        author = (
            ticket.requester_name if from_requester else (event.staff.name if event.staff else "")
        )
        thread.append(
            Message(
                event.created_at,
                from_requester,
                author,
                str(detail.get("body", "")),
                len(detail.get("attachments") or []),
            )
        )
    return thread


def _attach(ticket: Ticket, shots: Sequence[Screenshot]) -> list[Attachment]:
    """Store screenshots sent with a reply and add them to the ticket."""
    folder = current_app.config["UPLOAD_FOLDER"]
    added = []
    for shot in shots:
        store(shot, folder)
        added.append(
            Attachment(
                ticket_id=ticket.id,
                filename=shot.filename,
                content_type=shot.content_type,
                sha256=shot.sha256,
                size=shot.size,
                width=shot.width,
                height=shot.height,
            )
        )
    db.session.add_all(added)
    db.session.flush()
    return added


def staff_to_tell(ticket: Ticket) -> Staff | None:
    """Return the one person to tell about the requester's reply, or None for everyone."""
    assignee = ticket.assignee
    return assignee if assignee is not None and assignee.active else None


def client_reply(
    ticket: Ticket,
    body: str,
    from_address: str,
    sender_check: str,
    via: str = "e-mail",
    screenshots: Sequence[Screenshot] = (),
    once: str | None = None,
) -> bool:
    """Add the requester's answer (by e-mail or on the status page) and tell staff.

    Resumes a paused SLA clock and reopens a resolved ticket. `sender_check` says how we
    know it is theirs ("authenticated", "status link" …); `once` is a key that makes a
    second delivery of the same answer do nothing (False is returned then).
    """
    if from_address.strip().lower() != ticket.requester_email.strip().lower():
        raise UpdateError(f"Only the requester can reply to {ticket.reference}.")
    if once is not None and not HandledMessage.first_time(once):
        return False
    body = (body or "").strip()[:MAX_BODY] or "(empty message)"
    now, previous = utcnow(), ticket.status
    sla.resume(ticket, now)
    if ticket.status in (TicketStatus.WAITING_ON_CLIENT, TicketStatus.RESOLVED):
        ticket.status = TicketStatus.IN_PROGRESS
    added = _attach(ticket, screenshots)
    event = TicketEvent(
        kind="client_reply",
        detail={
            "body": body,
            "from": from_address,
            "status_from": previous,
            "sender": sender_check,
            "via": via,
            "attachments": [a.id for a in added],
        },
    )
    ticket.events.append(event)
    db.session.flush()
    for attachment in added:
        attachment.event_id = event.id
    _finish(ticket, _tell_staff(ticket, body, via))
    return True


def _tell_staff(ticket: Ticket, body: str, via: str) -> list[Notification]:
    """E-mail the assignee, or every staff recipient while nobody has taken the ticket."""
    context = {"body": body, "via": via}
    assignee = staff_to_tell(ticket)
    if assignee is not None:
        row = messages.email(
            ticket, "staff_client_reply", assignee.email, "client-reply", staff=assignee, **context
        )
        return [row]
    return messages.email_staff(ticket, "staff_client_reply", "client-reply", **context)


def add_note(ticket: Ticket, staff: Staff, text: str) -> TicketEvent:
    """Add an internal note: staff read it on the ticket page; the requester never does."""
    text = (text or "").strip()
    if not text:
        raise UpdateError("Write the note before saving it.")
    if len(text) > MAX_NOTE:
        raise UpdateError(f"An internal note can be at most {MAX_NOTE:,} characters.")
    event = TicketEvent(kind="note", staff=staff, detail={"body": text})
    ticket.events.append(event)
    _finish(ticket, [])
    return event


def assign(ticket: Ticket, staff: Staff, assignee: Staff | None) -> None:
    """Give the ticket to a staff member (None: to nobody); the timeline says who did it."""
    if assignee is not None and not assignee.active:
        raise UpdateError(f"{assignee.name} is disabled and cannot take tickets.")
    if (assignee.id if assignee else None) == ticket.assignee_id:
        who = assignee.name if assignee else "nobody"
        raise UpdateError(f"{ticket.reference} is already assigned to {who}.")
    previous = ticket.assignee.name if ticket.assignee else None
    ticket.assignee = assignee
    ticket.events.append(
        TicketEvent(
            kind="assigned",
            staff=staff,
            detail={"to": assignee.name if assignee else None, "from": previous},
        )
    )
    _finish(ticket, [])


def _finish(ticket: Ticket, rows: list[Notification]) -> None:
    """Commit the change and its outbox rows together, then hand the rows to the queue."""
    ticket.update_queue_rank()
    db.session.commit()
    outbox.schedule(rows)
