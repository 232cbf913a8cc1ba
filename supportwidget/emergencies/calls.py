"""Phoning staff about an emergency: what a call says when it is answered, what pressing 1
does, and each call's outcome on the ticket's timeline. Calls are placed by the outbox
(`notify/channels/voice.py`); re-paging decides who is phoned (`paging.page_team`)."""

from __future__ import annotations

from typing import Any

from supportwidget.emergencies import paging
from supportwidget.emergencies.state import emergency_state
from supportwidget.models import Notification, Ticket, TicketEvent, db
from supportwidget.notify import messages
from supportwidget.notify.channels import voice, vonage_calls
from supportwidget.vocab import CallOutcome, NotificationChannel

# Vonage's call statuses that say how a call ended up; the rest (started, ringing,
# completed) say the call went on as expected.
VONAGE_OUTCOMES = {
    "answered": CallOutcome.ANSWERED,
    "busy": CallOutcome.BUSY,
    "timeout": CallOutcome.NO_ANSWER,
    "unanswered": CallOutcome.NO_ANSWER,
    "failed": CallOutcome.FAILED,
    "rejected": CallOutcome.REJECTED,
    "cancelled": CallOutcome.CANCELLED,
    "machine": CallOutcome.VOICEMAIL,
}
ACKNOWLEDGE_KEY = "1"

NCCO = list[dict[str, Any]]


def call_row(notification_id: int | None) -> Notification | None:
    """Return the call a callback names (its outbox row), or None if there is no such call."""
    row = db.session.get(Notification, notification_id) if notification_id is not None else None
    if row is None or row.channel != NotificationChannel.VOICE:
        return None
    return row if row.ticket is not None and row.staff is not None else None


def _still_paging(ticket: Ticket) -> bool:
    state = emergency_state(ticket)
    return state is not None and state.is_paging


def answer_script(row: Notification) -> NCCO:
    """Return what an answered call says: the page and "press 1", or that it is taken."""
    ticket, member = row.ticket, row.staff
    assert ticket is not None and member is not None  # call_row made sure
    if _still_paging(ticket):
        say = messages.spoken(ticket, "page", staff=member)
        return vonage_calls.ncco(say, voice.callback_url("input", row.id))
    return vonage_calls.ncco(messages.spoken(ticket, "taken"), None)


def pressed(row: Notification, digits: str) -> NCCO:
    """Acknowledge for the person called when they pressed 1 (exactly like "ACK")."""
    ticket, member = row.ticket, row.staff
    assert ticket is not None and member is not None  # call_row made sure
    if digits.strip() == ACKNOWLEDGE_KEY and paging.acknowledge(ticket, member, via="voice"):
        return vonage_calls.ncco(messages.spoken(ticket, "acknowledged", staff=member), None)
    db.session.refresh(ticket)
    if _still_paging(ticket):
        return vonage_calls.ncco(
            messages.spoken(ticket, "retry"), voice.callback_url("input", row.id)
        )
    return vonage_calls.ncco(messages.spoken(ticket, "taken"), None)


def record_outcome(row: Notification, status: str) -> bool:
    """Put a call's outcome on the timeline (not committed); False for a passing status."""
    outcome = VONAGE_OUTCOMES.get(status)
    if outcome is None:
        return False
    assert row.ticket is not None  # call_row made sure
    row.delivery_status = status
    row.ticket.events.append(
        TicketEvent(
            kind="call", staff=row.staff, detail={"outcome": outcome.value, "to": row.recipient}
        )
    )
    return True
