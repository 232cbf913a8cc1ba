"""SLA scheduling: due times from a client's plan, first come first served without one."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from flask_babel import gettext, lazy_gettext

from supportwidget.models import Client, SlaPause, SlaPlan, Ticket, db
from supportwidget.platform import i18n
from supportwidget.sla import workqueue
from supportwidget.sla.business_time import BusinessCalendar, parse_duration
from supportwidget.vocab import TicketStatus

FCFS_EXPECTATION = lazy_gettext(
    "We usually get to requests within a few hours to a couple of days, depending on how "
    "complex they are and on having all the information we need. Requests from clients "
    "without a support plan are handled first come, first served."
)

# Where one request keeps the queue positions it counted (in its WSGI environ).
POSITIONS_KEY = "supportwidget.queue_positions"


@functools.lru_cache(maxsize=64)
def _calendar(
    timezone: str, hours: str, country: str | None, extra: tuple[str, ...]
) -> BusinessCalendar:
    # Plans change rarely and a calendar caches its days: share one per distinct plan shape.
    return BusinessCalendar(timezone, hours, country, [date.fromisoformat(d) for d in extra])


def _as_tuple(days: Iterable[str] | str | None) -> tuple[str, ...]:
    if not days:
        return ()
    return (days,) if isinstance(days, str) else tuple(str(d) for d in days)


def calendar_for(plan: SlaPlan | None) -> BusinessCalendar:
    """Return the business calendar of a plan, or the agency's default hours."""
    if plan is None:
        cfg = current_app.config
        return _calendar(
            cfg["DEFAULT_TIMEZONE"],
            cfg["DEFAULT_HOURS"],
            cfg["DEFAULT_HOLIDAYS"] or None,
            _as_tuple(cfg["DEFAULT_EXTRA_HOLIDAYS"]),
        )
    return _calendar(
        plan.timezone, plan.hours, plan.holiday_country or None, _as_tuple(plan.extra_holidays)
    )


def default_target() -> timedelta:
    """Return the business time clients without an SLA are queued by (DEFAULT_TARGET)."""
    value = current_app.config["DEFAULT_TARGET"]
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


def active_plan_at(client: Client, now: datetime) -> SlaPlan | None:
    """Return the client's plan in force at an instant, judged on the plan's local date."""
    plan = client.sla_plan
    if plan is None:
        return None
    # A contract ending 2026-12-31 covers that whole day where the agency works.
    return client.active_plan(now.astimezone(ZoneInfo(plan.timezone)).date())


def schedule_new(ticket: Ticket, now: datetime) -> None:
    """Set the due times of a new standard request from its client's contract."""
    plan = active_plan_at(ticket.site.client, now)
    calendar = calendar_for(plan)
    if plan is None:
        ticket.sla_plan_name = ticket.first_response_due = ticket.resolution_due = None
        ticket.effective_due_at = calendar.add(now, default_target())
        # Without an SLA nothing is promised by a date: any needed-by date needs a look.
        ticket.needed_by_conflict = ticket.needed_by is not None
        return
    ticket.sla_plan_name = plan.name
    ticket.first_response_due = calendar.add(now, timedelta(minutes=plan.first_response_minutes))
    ticket.resolution_due = calendar.add(now, timedelta(minutes=plan.resolution_minutes))
    ticket.effective_due_at = ticket.first_response_due
    ticket.needed_by_conflict = False
    if ticket.needed_by is not None:
        needed = datetime.combine(ticket.needed_by, time(23, 59), ZoneInfo(plan.timezone))
        ticket.needed_by_conflict = needed < ticket.resolution_due


def queue_position(ticket: Ticket) -> int | None:
    """Return where an open request of a client without an SLA stands in the staff queue.

    The same order staff work in (workqueue), so what the client is told agrees with it.
    """
    if ticket.is_emergency or ticket.sla_plan_name is not None or not ticket.is_open:
        return None
    # Counted once per request: the confirmation e-mail and the answer page say the same.
    cache = request.environ.setdefault(POSITIONS_KEY, {}) if has_request_context() else {}
    key = (ticket.id, ticket.queue_rank, ticket.effective_due_at)
    if key not in cache:
        with db.session.no_autoflush:  # only other tickets are counted; this one is read as is
            cache[key] = workqueue.position(ticket)
    return cache[key]


def ticket_zone(ticket: Ticket) -> str:
    """Return the time zone a ticket's times are told in: its plan's, else the agency's."""
    plan = plan_of(ticket)
    return plan.timezone if plan else current_app.config["DEFAULT_TIMEZONE"]


def format_due(moment: datetime, timezone: str) -> str:
    """Return a due time as the reader reads it: 'Tue 1 Dec, 13:00' in English."""
    return i18n.format_due(moment, timezone)


def expectation(ticket: Ticket) -> str:
    """Tell the requester when to expect work on a ticket, in the current language."""
    if ticket.is_emergency:
        return emergency_promise(ticket)
    if ticket.sla_plan_name and ticket.resolution_due and ticket.first_responded_at:
        # Once answered, the first-response time is history: only the resolution target counts.
        tz = ticket_zone(ticket)
        text = gettext(
            "Resolution target: %(resolution)s — your %(plan)s plan (times in %(timezone)s).",
            resolution=format_due(ticket.resolution_due, tz),
            plan=ticket.sla_plan_name,
            timezone=tz,
        )
        if open_pause(ticket) is not None:
            text += " " + gettext("The clock is paused while we wait for your answer.")
    elif ticket.sla_plan_name and ticket.first_response_due and ticket.resolution_due:
        tz = ticket_zone(ticket)
        text = gettext(
            "First response by %(first)s — your %(plan)s plan. "
            "Resolution target: %(resolution)s (times in %(timezone)s).",
            first=format_due(ticket.first_response_due, tz),
            plan=ticket.sla_plan_name,
            resolution=format_due(ticket.resolution_due, tz),
            timezone=tz,
        )
    else:
        position = queue_position(ticket)
        text = str(FCFS_EXPECTATION)
        if position:
            text += " " + gettext(
                "Right now you are number %(position)s in the queue.", position=position
            )
    if ticket.needed_by_conflict and ticket.needed_by is not None:
        text += " " + gettext(
            "You need this by %(date)s: we will do our best to accommodate that date.",
            date=i18n.format_day(ticket.needed_by),
        )
    return text


def emergency_target(ticket: Ticket) -> tuple[SlaPlan | None, int | None]:
    """Return the plan an emergency was filed under and its emergency-response minutes."""
    plan = plan_of(ticket)
    return plan, (plan.emergency_response_minutes or None) if plan else None


def emergency_promise(ticket: Ticket) -> str:
    """Tell the requester how soon the on-call team answers an emergency (their plan's target)."""
    plan, minutes = emergency_target(ticket)
    if plan is None or minutes is None:
        return gettext("Someone from our on-call team will contact you as soon as possible.")
    within = i18n.format_minutes(minutes)
    if ticket.callback_phone:
        return gettext(
            "Your %(plan)s plan: someone from our on-call team will call you back within "
            "%(within)s.",
            plan=plan.name,
            within=within,
        )
    return gettext(
        "Your %(plan)s plan: someone from our on-call team will get back to you within %(within)s.",
        plan=plan.name,
        within=within,
    )


def plan_of(ticket: Ticket) -> SlaPlan | None:
    """Return the plan a ticket was scheduled by, if any."""
    if ticket.sla_plan_name is None:
        return None
    return db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == ticket.sla_plan_name))


def pause(ticket: Ticket, now: datetime) -> None:
    """Stop the resolution clock while the ticket waits on the client."""
    if open_pause(ticket) is None:
        db.session.add(SlaPause(ticket_id=ticket.id, started_at=now))


def resume(ticket: Ticket, now: datetime) -> timedelta:
    """Restart the resolution clock; push the due time by the business time paused."""
    span = open_pause(ticket)
    if span is None:
        return timedelta(0)
    span.ended_at = now
    calendar = calendar_for(plan_of(ticket))
    paused = calendar.between(span.started_at, now)
    if ticket.resolution_due is not None and span.started_at < ticket.resolution_due:
        remaining = calendar.between(span.started_at, ticket.resolution_due)
        ticket.resolution_due = calendar.add(now, remaining)
        if ticket.first_responded_at is not None:
            ticket.effective_due_at = ticket.resolution_due
    return paused


def status_changed(ticket: Ticket, now: datetime) -> None:
    """Pause or resume the resolution clock after the ticket's status changed."""
    if ticket.status == TicketStatus.WAITING_ON_CLIENT:
        pause(ticket, now)
    else:
        resume(ticket, now)


def open_pause(ticket: Ticket) -> SlaPause | None:
    """Return the ticket's running pause, if any."""
    return db.session.scalar(
        sa.select(SlaPause).where(SlaPause.ticket_id == ticket.id, SlaPause.ended_at.is_(None))
    )


def responded(ticket: Ticket, now: datetime) -> None:
    """Record the first response: from now on the resolution target orders the queue."""
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
        if ticket.resolution_due is not None:
            ticket.effective_due_at = ticket.resolution_due
