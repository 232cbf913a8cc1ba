"""The one truthful state of an emergency: paging, acknowledged, downgraded, resolved.

Every place that tells someone about an emergency (the answer page, the status page, the
widget, e-mails, SMS, the acknowledge link and the dashboard) reads it from
`emergency_state`, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask_babel import gettext

from supportwidget.models import SlaPlan, Ticket, TicketEvent
from supportwidget.platform import i18n
from supportwidget.sla import schedules as sla
from supportwidget.vocab import (
    EmergencyCategory,
    EmergencyPhase,
    OfflineAnswer,
    TicketStatus,
    TriageDecision,
)
from supportwidget.watch.probe import CheckResult


@dataclass(frozen=True)
class Step:
    """One change an emergency went through: when, by whom, and why (a downgrade)."""

    phase: EmergencyPhase
    at: datetime
    by: str | None = None
    reason: str | None = None

    @property
    def label(self) -> str:
        """Name the step for the requester, in the current language."""
        return str(self.phase.requester_label) % {"name": self.by}


@dataclass(frozen=True)
class EmergencyState:
    """Where an emergency stands now, and the steps that brought it there."""

    reference: str
    phase: EmergencyPhase
    steps: tuple[Step, ...]
    page_round: int
    plan: SlaPlan | None
    target_minutes: int | None
    response_due: datetime | None
    hourly_rate: Decimal | None  # the rate a client without a plan accepted
    category: str | None
    answer: str | None  # the requester's answer to the category's question
    check: CheckResult | None  # our fetch of the site (offline emergencies)
    zone: str = "UTC"  # the time zone its times are told in (the plan's, else the agency's)

    @property
    def question(self) -> str | None:
        """Return the category's question, in the current language."""
        category = EmergencyCategory.lookup(self.category)
        return None if category is None else str(category.question)

    @property
    def answer_text(self) -> str | None:
        """Return the requester's answer to the question, as they chose or wrote it."""
        chosen = OfflineAnswer.lookup(self.answer)
        if self.category == EmergencyCategory.OFFLINE and chosen is not None:
            return str(chosen.requester_label)
        return self.answer

    @property
    def check_line(self) -> str | None:
        """Say what our own check of the site found, for staff."""
        if self.check is None:
            return None
        return f"our check of {self.check.url}: {self.check.summary}"

    def step(self, phase: EmergencyPhase) -> Step | None:
        """Return the step of a phase, if the emergency reached it."""
        return next((step for step in self.steps if step.phase == phase), None)

    @property
    def is_paging(self) -> bool:
        return self.phase == EmergencyPhase.PAGING

    @property
    def is_resolved(self) -> bool:
        return self.phase == EmergencyPhase.RESOLVED

    @property
    def downgrade(self) -> Step | None:
        """Return the downgrade, with its reason, if staff made it a standard request."""
        return self.step(EmergencyPhase.DOWNGRADED)

    @property
    def headline(self) -> str:
        """Say where the emergency stands, to the requester, in the current language."""
        step = self.steps[-1]
        when = i18n.local_time(step.at, self.zone, time_only=True)
        if self.phase == EmergencyPhase.ACKNOWLEDGED:
            return gettext(
                "Emergency %(reference)s: %(name)s from our on-call team took it at %(time)s "
                "and is working on it.",
                reference=self.reference,
                name=step.by,
                time=when,
            )
        if self.phase == EmergencyPhase.DOWNGRADED:
            return gettext(
                "%(reference)s is no longer handled as an emergency: %(name)s made it a "
                "standard request at %(time)s.",
                reference=self.reference,
                name=step.by,
                time=when,
            )
        if self.phase == EmergencyPhase.RESOLVED:
            return gettext(
                "%(reference)s was resolved at %(time)s.", reference=self.reference, time=when
            )
        return gettext(
            "Emergency %(reference)s: the on-call team is being paged.", reference=self.reference
        )

    @property
    def staff_line(self) -> str:
        """Say where the emergency stands, to staff (English)."""
        step = self.steps[-1]
        when = step.at.strftime("%H:%M UTC")
        if self.phase == EmergencyPhase.ACKNOWLEDGED:
            return f"acknowledged by {step.by} at {when}, {self._response_time()}"
        if self.phase == EmergencyPhase.DOWNGRADED:
            return f"downgraded by {step.by} at {when}: {step.reason}"
        if self.phase == EmergencyPhase.RESOLVED:
            return f"resolved{f' by {step.by}' if step.by else ''} at {when}"
        return f"paging, round {self.page_round}: nobody has acknowledged yet"

    def _response_time(self) -> str:
        """Say how long the acknowledgement took, against the plan's target if there is one."""
        filed, acked = self.steps[0].at, self.step(EmergencyPhase.ACKNOWLEDGED)
        took = _minutes(acked.at - filed) if acked else "?"
        if self.response_due is None or acked is None:
            return f"{took} after filing"
        verdict = "met" if acked.at <= self.response_due else "missed"
        return f"{took} after filing: {self.target_minutes}-min target {verdict}"

    @property
    def terms(self) -> str:
        """Say what the client is entitled to (staff e-mail and the dashboard)."""
        if self.plan is not None and self.target_minutes:
            due = self.response_due.strftime("%H:%M UTC") if self.response_due else "?"
            return (
                f"{self.plan.name} plan: emergency response within {self.target_minutes} min "
                f"(by {due})"
            )
        if self.plan is not None:
            return f"{self.plan.name} plan (no emergency-response target)"
        if self.hourly_rate is not None:
            return f"no SLA — client accepted {i18n.format_money(self.hourly_rate)} per hour"
        return "no SLA and no hourly rate agreed: as soon as possible"

    @property
    def short_terms(self) -> str:
        """Say the same in a few characters, for an SMS page."""
        if self.plan is not None and self.target_minutes:
            return f"{self.plan.name} {self.target_minutes}min"
        if self.plan is not None:
            return self.plan.name
        if self.hourly_rate is not None:
            return f"no SLA, {i18n.format_money(self.hourly_rate)}/h OK"
        return "no SLA"


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} min" if minutes else "under a minute"


def was_emergency(ticket: Ticket) -> bool:
    """Tell whether a ticket was filed as an emergency (it may since have been downgraded)."""
    return ticket.is_emergency or ticket.triage_decision == TriageDecision.DOWNGRADE


def _last_event(ticket: Ticket, kind: str, matches: Callable[[dict], bool]) -> TicketEvent | None:
    """Return the ticket's latest event of a kind whose detail matches."""
    events = [e for e in ticket.events if e.kind == kind and matches(e.detail or {})]
    return events[-1] if events else None


def _step(
    phase: EmergencyPhase, event: TicketEvent | None, fallback: datetime, reason: str | None = None
) -> Step:
    """Return the step an event records (by whom, when); the fallback time if it is missing."""
    by = event.staff.name if event is not None and event.staff is not None else None
    return Step(phase, event.created_at if event is not None else fallback, by, reason)


def _steps(ticket: Ticket) -> list[Step]:
    """Return the steps the emergency reached, in order."""
    steps = [Step(EmergencyPhase.PAGING, ticket.created_at)]
    if ticket.acknowledged_at is not None:
        by = ticket.acknowledged_by.name if ticket.acknowledged_by else None
        steps.append(Step(EmergencyPhase.ACKNOWLEDGED, ticket.acknowledged_at, by))
    if ticket.triage_decision == TriageDecision.DOWNGRADE:
        downgraded = TriageDecision.DOWNGRADE
        event = _last_event(ticket, "triage", lambda d: d.get("decision") == downgraded)
        steps.append(_step(EmergencyPhase.DOWNGRADED, event, steps[-1].at, ticket.triage_reason))
    if not ticket.is_open:
        event = _last_event(ticket, "status", lambda d: d.get("to") in TicketStatus.finished())
        steps.append(_step(EmergencyPhase.RESOLVED, event, steps[-1].at))
    return steps


def emergency_state(ticket: Ticket) -> EmergencyState | None:
    """Return where an emergency stands, or None for a ticket never filed as one."""
    if not was_emergency(ticket):
        return None
    steps = _steps(ticket)
    plan, minutes = sla.emergency_target(ticket)
    rate = ticket.site.client.hourly_rate
    return EmergencyState(
        reference=ticket.reference,
        phase=steps[-1].phase,
        steps=tuple(steps),
        page_round=ticket.page_round,
        plan=plan,
        target_minutes=minutes,
        response_due=ticket.created_at + timedelta(minutes=minutes) if minutes else None,
        hourly_rate=rate if plan is None and ticket.billing_consent else None,
        category=ticket.category,
        answer=ticket.category_answer,
        check=CheckResult.from_dict(ticket.site_check) if ticket.site_check else None,
        zone=sla.ticket_zone(ticket),
    )
