"""Staff updates to a ticket: status, replies, time, triage, resends."""

from __future__ import annotations

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Notification, Staff, Ticket, TicketEvent, TimeEntry, db, utcnow
from supportwidget.notify import messages, outbox
from supportwidget.sla import schedules as sla
from supportwidget.vocab import NotificationStatus, TicketKind, TicketStatus, TriageDecision

MAX_BODY = 20_000
MAX_MINUTES = 24 * 60


class UpdateError(ValueError):
    """A change a staff member or requester asked for that cannot be made; says why."""


def _finish(ticket: Ticket, rows: list[Notification]) -> None:
    """Commit the change and its outbox rows together, then hand the rows to the queue."""
    ticket.update_queue_rank()
    db.session.commit()
    outbox.schedule(rows)


def change_status(ticket: Ticket, staff: Staff, status: str) -> None:
    """Move a ticket to a new status; waiting on the client pauses the resolution clock."""
    if status not in TicketStatus.values():
        raise UpdateError(f"Choose a status from: {', '.join(TicketStatus.values())}.")
    if status == ticket.status:
        raise UpdateError(f"{ticket.reference} is already {TicketStatus.label_of(status).lower()}.")
    now, previous, was_open = utcnow(), ticket.status, ticket.is_open
    ticket.status = status
    sla.status_changed(ticket, now)
    ticket.events.append(
        TicketEvent(kind="status", staff=staff, detail={"from": previous, "to": status})
    )
    rows = [
        messages.email(ticket, "requester_status", ticket.requester_email, "status", staff=staff)
    ]
    if ticket.is_emergency and was_open and not ticket.is_open:
        # Everyone paged hears that it is over; an unacknowledged one stops paging.
        rows += emergencies.stop_paging(ticket, staff, "resolved", "resolved-notice")
    _finish(ticket, rows)


def reply(
    ticket: Ticket, staff: Staff, body: str, via: str = "dashboard", sender_check: str | None = None
) -> Notification:
    """E-mail the requester an answer threaded on the ticket; it counts as a response.

    Staff answer from the dashboard or by replying to their notification e-mail (`via`
    "e-mail", through mail-in, with how the sender was checked): both land here.
    """
    body = (body or "").strip()
    if not body:
        raise UpdateError("Write a reply before sending it.")
    if len(body) > MAX_BODY:
        raise UpdateError(f"A reply can be at most {MAX_BODY:,} characters.")
    now = utcnow()
    sla.responded(ticket, now)
    if ticket.status == TicketStatus.NEW:
        ticket.status = TicketStatus.IN_PROGRESS
    row = messages.email(
        ticket, "requester_reply", ticket.requester_email, "reply", staff=staff, body=body
    )
    db.session.flush()
    ticket.events.append(
        TicketEvent(
            kind="reply",
            staff=staff,
            detail={
                "body": body,
                "notification_id": row.id,
                "via": via,
                **({"sender": sender_check} if sender_check else {}),
            },
        )
    )
    _finish(ticket, [row])
    return row


def parse_minutes(text: str | None) -> int:
    """Read minutes typed by a person: '45', '1h30', '1:30' or '2h'."""
    raw = (text or "").strip().lower().replace(" ", "")
    hours, minutes = "0", raw
    if ":" in raw:
        hours, minutes = raw.split(":", 1)
    elif "h" in raw:
        hours, minutes = raw.split("h", 1)
    minutes = minutes.removesuffix("m").removesuffix("min") or "0"
    digits = hours + minutes
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 6) or not raw:
        raise UpdateError("Enter the time spent in minutes, e.g. 45 or 1h30.")
    return int(hours) * 60 + int(minutes)


def not_billed_because(ticket: Ticket) -> str | None:
    """Say why billable time on this ticket will not be billed, or None if it will be.

    Only confirmed emergencies of clients without an SLA at the time are charged.
    """
    if not ticket.is_emergency:
        if ticket.sla_plan_name:
            return f"{ticket.reference} is covered by the {ticket.sla_plan_name} SLA"
        return f"{ticket.reference} is a standard request; only emergencies are billed"
    if ticket.sla_plan_name:
        return f"{ticket.reference} is covered by the {ticket.sla_plan_name} SLA"
    if ticket.triage_decision != TriageDecision.CONFIRM:
        return f"{ticket.reference} is not a confirmed emergency (confirm it in triage to bill it)"
    return None


def log_time(
    ticket: Ticket, staff: Staff, minutes: int, note: str | None, billable: bool
) -> TimeEntry:
    """Record time worked on a ticket (billable emergency time is charged to clients)."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise UpdateError(f"Time spent must be between 1 and {MAX_MINUTES} minutes.")
    note = (note or "").strip() or None
    if note and len(note) > 500:
        raise UpdateError("A time note can be at most 500 characters.")
    entry = TimeEntry(
        ticket_id=ticket.id, staff=staff, minutes=minutes, note=note, billable=billable
    )
    db.session.add(entry)
    db.session.flush()
    ticket.events.append(
        TicketEvent(
            kind="time",
            staff=staff,
            detail={"minutes": minutes, "note": note, "billable": billable, "entry": entry.id},
        )
    )
    _finish(ticket, [])
    return entry


def acknowledge(ticket: Ticket, staff: Staff) -> None:
    """Take an emergency from the dashboard: paging stops and the others are told."""
    if not ticket.is_emergency:
        raise UpdateError(f"{ticket.reference} is not an emergency; there is nothing to take.")
    if not emergencies.acknowledge(ticket, staff, via="dashboard"):
        db.session.refresh(ticket)
        who = ticket.acknowledged_by.name if ticket.acknowledged_by else "someone"
        raise UpdateError(f"{ticket.reference} was already acknowledged by {who}.")


def triage(ticket: Ticket, staff: Staff, decision: str, reason: str | None) -> None:
    """Confirm an emergency, or downgrade it to a standard request and tell the requester why."""
    if not ticket.is_emergency:
        raise UpdateError(f"{ticket.reference} is not an emergency, so it cannot be triaged.")
    if decision not in TriageDecision.values():
        raise UpdateError(f"Choose whether to {TriageDecision.listing()} the emergency.")
    reason = (reason or "").strip() or None
    if decision == TriageDecision.DOWNGRADE and (reason is None or len(reason) < 5):
        raise UpdateError("Give the requester a reason for the downgrade (at least 5 characters).")
    if reason and len(reason) > 2000:
        raise UpdateError("A triage reason can be at most 2,000 characters.")
    if decision == TriageDecision.CONFIRM and ticket.acknowledged_at is None:
        # Confirming means someone is on it: stop paging the others first.
        emergencies.acknowledge(ticket, staff, via="triage")
        db.session.refresh(ticket)
    ticket.triage_decision, ticket.triage_reason = decision, reason
    ticket.events.append(
        TicketEvent(kind="triage", staff=staff, detail={"decision": decision, "reason": reason})
    )
    rows = _downgrade(ticket, staff, reason or "") if decision == TriageDecision.DOWNGRADE else []
    _finish(ticket, rows)


def _downgrade(ticket: Ticket, staff: Staff, reason: str) -> list[Notification]:
    """Turn an emergency into a standard request: stop paging, start the standard clock."""
    now = utcnow()
    ticket.kind = TicketKind.STANDARD
    rows = emergencies.stop_paging(ticket, staff, "downgraded", "stand-down")
    ticket.first_response_due = ticket.resolution_due = None
    ticket.first_responded_at = None
    sla.schedule_new(ticket, now)
    # Where the e-mail says it stands in the queue is where staff see it.
    ticket.update_queue_rank()
    rows.append(
        messages.email(
            ticket,
            "requester_downgraded",
            ticket.requester_email,
            "downgraded",
            staff=staff,
            reason=reason,
        )
    )
    return rows


def resend_refusal(ticket: Ticket, row: Notification) -> str | None:
    """Say why a notification of a ticket cannot be sent again, or None if it can."""
    if row.status != NotificationStatus.FAILED:
        return f"This notification is {row.status}; only a failed one can be sent again."
    if row.staff is not None and not row.staff.active:
        return f"{row.staff.name} is disabled; nothing is sent to them."
    if emergencies.is_paging(row) and (
        not ticket.is_emergency or ticket.acknowledged_at is not None or not ticket.is_open
    ):
        return f"{ticket.reference} needs nobody paged any more; the page is not sent again."
    return None


def resend(ticket: Ticket, staff: Staff, row: Notification) -> None:
    """Send a failed notification again, on the timeline as sent again by this person."""
    refusal = resend_refusal(ticket, row)
    if refusal is not None:
        raise UpdateError(refusal)
    ticket.events.append(
        TicketEvent(
            kind="resent",
            staff=staff,
            detail={
                "notification_id": row.id,
                "channel": row.channel,
                "recipient": row.recipient,
                "error": row.last_error,
            },
        )
    )
    outbox.requeue(row, utcnow())
    _finish(ticket, [row])
