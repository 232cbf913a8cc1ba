"""SLA breach warnings: tell staff before a target is missed, record it when it is."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from supportwidget.models import Notification, SlaPlan, Ticket, TicketEvent, db, utcnow
from supportwidget.notify import messages, outbox
from supportwidget.sla import schedules as sla
from supportwidget.sla.business_time import BusinessCalendar, format_duration, parse_duration
from supportwidget.vocab import SlaTarget, TicketKind, TicketStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One SLA target of a ticket still to be met."""

    name: str
    due: datetime


def warning_window() -> timedelta:
    """Return PRE_BREACH_WARNING (business time before a due time; default one hour)."""
    value = current_app.config["PRE_BREACH_WARNING"]
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


def pending_targets(ticket: Ticket) -> list[Target]:
    """Return the ticket's targets not yet met; a paused resolution clock has none."""
    targets = []
    if ticket.first_response_due is not None and ticket.first_responded_at is None:
        targets.append(Target(SlaTarget.FIRST_RESPONSE, ticket.first_response_due))
    paused = ticket.status == TicketStatus.WAITING_ON_CLIENT and sla.open_pause(ticket) is not None
    if ticket.resolution_due is not None and ticket.is_open and not paused:
        targets.append(Target(SlaTarget.RESOLUTION, ticket.resolution_due))
    return targets


@dataclass(frozen=True)
class Deadline:
    """The deadline staff should look at now, and where it stands."""

    label: str
    due: datetime
    state: str  # ok / at-risk / breached / paused


# An emergency's first response is its acknowledgement, against the plan's emergency target.
EMERGENCY_RESPONSE = "Emergency response"


def respond(ticket: Ticket, now: datetime) -> None:
    """Record a ticket's first response now; a response after its due time breaches it."""
    due, missed = ticket.first_response_due, list(ticket.breached or [])
    if ticket.first_responded_at is None and due is not None and now > due:
        if SlaTarget.FIRST_RESPONSE not in missed:
            ticket.breached = [*missed, SlaTarget.FIRST_RESPONSE]
            ticket.events.append(
                TicketEvent(kind="sla_breached", detail={"target": SlaTarget.FIRST_RESPONSE})
            )
    sla.responded(ticket, now)


def next_deadline(ticket: Ticket, now: datetime) -> Deadline | None:
    """Return the first target still to be met (the ones breach warnings watch), else the
    no-SLA target; a resolution clock paused while waiting on the client is shown paused,
    never breached. "At risk" is DASHBOARD_AT_RISK_MINUTES of wall-clock time."""
    if not ticket.is_open:
        return None
    window = timedelta(minutes=int(current_app.config["DASHBOARD_AT_RISK_MINUTES"]))
    targets = pending_targets(ticket)
    if targets:
        name, due = targets[0].name, targets[0].due
        label, missed = SlaTarget.label_of(name), name in (ticket.breached or [])
        if ticket.is_emergency and name == SlaTarget.FIRST_RESPONSE:
            label = EMERGENCY_RESPONSE
    elif ticket.resolution_due is not None:
        return Deadline(
            "Resolution (clock paused: waiting on client)", ticket.resolution_due, "paused"
        )
    elif not ticket.is_emergency and ticket.effective_due_at is not None:
        label, due, missed = "Target (no SLA)", ticket.effective_due_at, False
    else:
        return None
    if missed or due <= now:
        return Deadline(label, due, "breached")
    return Deadline(label, due, "at-risk" if due - now <= window else "ok")


def _candidates(now: datetime, window: timedelta) -> list[int]:
    """Return ids of open SLA standard requests with a target due inside the window."""
    plans = db.session.scalars(
        sa.select(Ticket.sla_plan_name)
        .where(
            Ticket.kind == TicketKind.STANDARD,
            Ticket.status.in_(TicketStatus.open()),
            Ticket.sla_plan_name.is_not(None),
        )
        .distinct()
    ).all()
    ids: list[int] = []
    for name in plans:
        plan = db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == name))
        horizon = sla.calendar_for(plan).add(now, window)
        ids += db.session.scalars(
            sa.select(Ticket.id).where(
                Ticket.kind == TicketKind.STANDARD,
                Ticket.status.in_(TicketStatus.open()),
                Ticket.sla_plan_name == name,
                sa.or_(
                    sa.and_(
                        Ticket.first_responded_at.is_(None), Ticket.first_response_due <= horizon
                    ),
                    Ticket.resolution_due <= horizon,
                ),
            )
        ).all()
    return sorted(ids)


def due_actions(
    ticket: Ticket, calendar: BusinessCalendar, now: datetime, window: timedelta
) -> list[tuple[str, Target]]:
    """Return what to do now: ("breached", target) or ("warn", target), each once per target."""
    actions = []
    for target in pending_targets(ticket):
        if target.due <= now:
            if target.name not in (ticket.breached or []):
                actions.append(("breached", target))
        elif (
            target.name not in (ticket.breach_warned or [])
            # Only in business hours: nobody should be woken for a standard request.
            and calendar.is_open(now)
            and target.due <= calendar.add(now, window)
        ):
            actions.append(("warn", target))
    return actions


def check_ticket(
    ticket: Ticket, calendar: BusinessCalendar, now: datetime, window: timedelta
) -> list[Notification]:
    """Mark breached targets and queue warnings for ones about to breach (not committed)."""
    rows: list[Notification] = []
    warned, breached = list(ticket.breach_warned or []), list(ticket.breached or [])
    for action, target in due_actions(ticket, calendar, now, window):
        if action == "breached":
            breached.append(target.name)
            ticket.events.append(TicketEvent(kind="sla_breached", detail={"target": target.name}))
        else:
            warned.append(target.name)
            rows += _warn(ticket, target, calendar.between(now, target.due), calendar)
    # New lists, so SQLAlchemy sees the change (JSON columns do not track mutation).
    ticket.breach_warned, ticket.breached = warned, breached
    return rows


def _warn(
    ticket: Ticket, target: Target, left: timedelta, calendar: BusinessCalendar
) -> list[Notification]:
    """Queue the staff e-mails warning that a target is close."""
    ticket.events.append(
        TicketEvent(kind="breach_warning", detail={"target": target.name, "left": str(left)})
    )
    return messages.email_staff(
        ticket,
        "staff_breach_warning",
        f"breach-warning-{target.name}",
        target=SlaTarget.label_of(target.name).lower(),
        due_local=sla.format_due(target.due, calendar.timezone),
        timezone=calendar.timezone,
        left=format_duration(left) if left >= timedelta(minutes=1) else "under a minute",
    )


def warn_breaches(now: datetime | None = None) -> int:
    """Warn staff of SLA targets about to be missed and mark missed ones; return e-mails queued."""
    now = now or utcnow()
    window = warning_window()
    queued = 0
    for ticket_id in _candidates(now, window):
        ticket = db.session.get(Ticket, ticket_id)
        if ticket is None:
            continue
        calendar = sla.calendar_for(sla.plan_of(ticket))
        if not due_actions(ticket, calendar, now, window):
            continue  # already warned and marked: nothing to lock or write
        # Lock and re-read (PostgreSQL) so two workers never both warn; SQLite runs one
        # scheduler per database, so its missing row locks do not matter.
        locked = db.session.scalar(
            sa.select(Ticket)
            .where(Ticket.id == ticket_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        rows = check_ticket(locked, calendar, now, window) if locked is not None else []
        db.session.commit()
        outbox.schedule(rows)
        queued += len(rows)
    return queued
