"""Emergency workflows: open, page the on-call team, acknowledge, re-page, escalate."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import QueryableAttribute

from supportwidget.emergencies.links import ack_url
from supportwidget.emergencies.state import emergency_state
from supportwidget.models import (
    HandledMessage,
    Notification,
    Site,
    SiteIncident,
    Staff,
    Ticket,
    TicketEvent,
    db,
    rows_changed,
    utcnow,
)
from supportwidget.notify import messages, outbox
from supportwidget.notify.channels import CHANNELS
from supportwidget.platform import jobs
from supportwidget.sla import deadlines
from supportwidget.sla import schedules as sla
from supportwidget.tickets import filing as tickets
from supportwidget.vocab import (
    EmergencyCategory,
    NotificationChannel,
    NotificationStatus,
    StaffRole,
    TicketKind,
    TicketStatus,
)
from supportwidget.watch import probe
from supportwidget.watch.probe import CheckResult

log = logging.getLogger(__name__)
PAGE, CALL = "page", "call"  # purposes "page-<round>" (SMS) and "call-<round>" (voice)


def needs_billing_consent(site: Site) -> bool:
    """Tell whether a client must accept the emergency rate: no SLA in force right now."""
    return sla.active_plan_at(site.client, utcnow()) is None


def _interval() -> timedelta:
    return timedelta(seconds=float(current_app.config["EMERGENCY_REPAGE_INTERVAL"]))


def open_emergency(
    site: Site,
    request: tickets.Request,
    category: str,
    callback_phone: str | None,
    billing_consent: bool,
    *,
    answer: str | None = None,
    site_check: CheckResult | None = None,
    opened_by_watch: bool = False,
    with_ticket: Callable[[Ticket], None] | None = None,
) -> Ticket:
    """File an emergency, page the on-call team and e-mail everyone, in one transaction.

    `answer` is the requester's answer to the category's question; `site_check` what our
    own fetch of the site found (offline emergencies): both go to staff with the page.
    A client's "offline" while the uptime watch has the site down joins the watch's ticket
    instead of paging again. `with_ticket` adds rows tied to the new ticket (the watch's
    incident) to the same transaction.
    """
    if category == EmergencyCategory.OFFLINE and not opened_by_watch:
        watching = watch_ticket(site)
        if watching is not None:
            return join_watch_ticket(watching, request, answer)

    def build() -> tickets.Built:
        ticket = tickets.new_ticket(
            site,
            request,
            kind=TicketKind.EMERGENCY,
            category=category,
            callback_phone=callback_phone,
            billing_consent=billing_consent,
            category_answer=(answer or "").strip() or None,
            site_check=site_check.as_dict() if site_check else None,
            opened_by_watch=opened_by_watch,
        )
        db.session.flush()
        schedule_emergency(ticket, site)
        if with_ticket is not None:
            with_ticket(ticket)
        return ticket, notify_emergency(ticket)

    ticket, created = tickets.file_once(request.nonce, build)
    if created:
        schedule_repage(ticket.id, ticket.next_page_at)
    return ticket


def watch_ticket(site: Site) -> Ticket | None:
    """Return the open emergency of the uptime watch's current incident at a site, if any."""
    return db.session.scalar(
        sa.select(Ticket)
        .join(SiteIncident, SiteIncident.ticket_id == Ticket.id)
        .where(
            SiteIncident.site_id == site.id,
            SiteIncident.ended_at.is_(None),
            Ticket.status.not_in(TicketStatus.finished()),
        )
        .order_by(SiteIncident.id.desc())
        .limit(1)
    )


def join_watch_ticket(ticket: Ticket, request: tickets.Request, answer: str | None) -> Ticket:
    """Add a client's own "offline" report to the watch's ticket: noted, confirmed, no page."""
    if request.nonce and not HandledMessage.first_time(f"joined:{request.nonce}"):
        return ticket  # the same form sent twice
    ticket.events.append(
        TicketEvent(
            kind="client_reported",
            detail={
                "name": request.name.strip(),
                "email": request.email.strip(),
                "description": request.description.strip()[:1000],
                "answer": (answer or "").strip()[:200],
            },
        )
    )
    row = messages.email(ticket, "requester_confirmation", request.email.strip(), "confirm")
    db.session.commit()
    outbox.schedule([row])
    return ticket


def check_site(site: Site) -> CheckResult:
    """Fetch a site's URL now, within EMERGENCY_CHECK_TIMEOUT: is it really offline?"""
    config = current_app.config
    return probe.check(
        site.url,
        timeout=float(config["EMERGENCY_CHECK_TIMEOUT"]),
        allow_private=bool(config["WATCH_ALLOW_PRIVATE"]),
    )


def needs_confirmation(category: str, site_check: CheckResult | None, confirmed: bool) -> bool:
    """Tell whether to ask "still file an emergency?" first: an offline site that loads."""
    return (
        category == EmergencyCategory.OFFLINE
        and site_check is not None
        and site_check.ok
        and not confirmed
    )


def schedule_repage(ticket_id: int, at: datetime | None) -> None:
    """Hand the next re-page to the worker (on the SMS lane); if the lanes are down, the
    periodic re-page catches it.

    The ticket is already committed: a lane failure must not turn into an error page that
    makes a frightened client file the emergency (and page everyone) a second time.
    """
    try:
        jobs.enqueue("repage", ticket_id, lane=CHANNELS[NotificationChannel.SMS].lane, at=at)
    except Exception:  # noqa: BLE001 - next_page_at in the ticket row drives repage_due
        log.exception(
            "could not hand over the re-page of ticket %s; the periodic job will", ticket_id
        )


def schedule_emergency(ticket: Ticket, site: Site, now: datetime | None = None) -> None:
    """Put an emergency at the top of the queue and set its first re-page (from `now`:
    its creation, or when a standard ticket became an emergency)."""
    now = now or ticket.created_at
    plan = sla.active_plan_at(site.client, now)
    if plan is not None:
        ticket.sla_plan_name = plan.name
        if plan.emergency_response_minutes:
            ticket.first_response_due = now + timedelta(minutes=plan.emergency_response_minutes)
    ticket.effective_due_at = now
    ticket.update_queue_rank()
    ticket.page_round, ticket.next_page_at = 1, now + _interval()


def notify_emergency(ticket: Ticket, tell_requester: bool = True) -> list[Notification]:
    """Queue the pages, the [EMERGENCY] staff e-mails and the requester's confirmation
    (not when an escalated ticket's requester was told already)."""
    rows = page_team(ticket, on_call_only=True)
    rows += [
        messages.email(
            ticket,
            "staff_new_ticket",
            address,
            "staff-emergency",
            staff=member,
            with_attachments=True,
            ack_url=member and ack_url(ticket, member),
        )
        for address, member in messages.staff_recipients()
    ]
    if not tell_requester:
        pass
    elif not ticket.opened_by_watch:
        rows.append(
            messages.email(ticket, "requester_confirmation", ticket.requester_email, "confirm")
        )
    elif ticket.site.client.watch_notify:
        # Nobody filed it: the client's contacts hear that we found it and are on it.
        rows += [
            messages.email(ticket, "requester_watch_down", contact, "watch-contact")
            for contact in ticket.site.client.emails
        ]
    return rows


def page_team(ticket: Ticket, on_call_only: bool) -> list[Notification]:
    """Queue one page per on-call staff member (or everyone with a phone), and a call to
    each once EMERGENCY_CALL_AFTER rounds went unacknowledged.

    With nobody on call (a rota left empty), everyone with a phone is paged at once:
    an emergency is never met with silence until the escalation round.
    """
    everyone = sa.select(Staff).where(Staff.active, Staff.phone.is_not(None)).order_by(Staff.id)
    team = db.session.scalars(everyone.where(Staff.on_call) if on_call_only else everyone).all()
    if not team and on_call_only:
        log.warning("nobody is on call: paging everyone with a phone for %s", ticket.reference)
        team = db.session.scalars(everyone).all()
    round_ = ticket.page_round
    shrink = page_parts(ticket)
    rows = [
        messages.sms(
            ticket,
            "page",
            member,
            f"{PAGE}-{round_}",
            shrink=shrink,
            ack_url=ack_url(ticket, member),
            round_name=ordinal(round_),
        )
        for member in team
    ]
    phoned = team if round_ > int(current_app.config["EMERGENCY_CALL_AFTER"]) else []
    rows += [messages.call(ticket, "page", member, f"{CALL}-{round_}") for member in phoned]
    detail = {"round": round_, "staff": [m.name for m in team]}
    if phoned:
        detail["phoned"] = [m.name for m in phoned]
    ticket.events.append(TicketEvent(kind="paged", detail=detail))
    return rows


def page_parts(ticket: Ticket) -> dict[str, str]:
    """Return the phrases of a page that may shrink to fit one SMS: terms and our check."""
    found = emergency_state(ticket)
    if found is None:
        return {}
    parts = {"terms": found.short_terms}
    if found.check is not None:
        parts["check"] = f"check: {found.check.brief}"
    return parts


def ordinal(number: int) -> str:
    """Return '1st', '2nd', '3rd', '4th' … '11th', '21st' (staff read English)."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def acknowledge(ticket: Ticket, member: Staff, via: str) -> bool:
    """Record who took an emergency, stop paging and tell the others; False if already taken.

    The acknowledgement is the emergency response: it meets or misses the plan's target.
    """
    if not ticket.is_emergency or ticket.acknowledged_at is not None or not ticket.is_open:
        return False
    now = utcnow()
    claimed = rows_changed(
        sa.update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=member.id, next_page_at=None)
    )
    if claimed != 1:
        db.session.rollback()
        return False
    db.session.refresh(ticket)
    cancel_pending_pages(ticket, f"{ticket.reference} was acknowledged by {member.name} first")
    ticket.events.append(TicketEvent(kind="acknowledged", staff=member, detail={"via": via}))
    deadlines.respond(ticket, now)
    if ticket.status == TicketStatus.NEW:
        ticket.status = TicketStatus.IN_PROGRESS
    ticket.update_queue_rank()
    rows = tell_paged(ticket, "acknowledged", "ack-notice", actor=member, acker=member)
    rows.append(
        messages.email(
            ticket, "requester_acknowledged", ticket.requester_email, "ack-requester", acker=member
        )
    )
    db.session.commit()
    outbox.schedule(rows)
    return True


def tell_paged(
    ticket: Ticket, template: str, purpose: str, actor: Staff | None, **extra: Any
) -> list[Notification]:
    """Queue a short SMS notice (never another page) to everyone paged but the actor."""
    return [
        messages.sms(ticket, template, member, purpose, **extra)
        for member in paged_staff(ticket)
        if actor is None or member.id != actor.id
    ]


def stop_paging(ticket: Ticket, staff: Staff, template: str, purpose: str) -> list[Notification]:
    """End an emergency's paging (downgraded, resolved) and tell everyone paged so."""
    ticket.next_page_at = None
    cancel_pending_pages(ticket, f"{ticket.reference} was {template} by {staff.name}")
    return tell_paged(ticket, template, purpose, actor=staff, by=staff)


def paged_staff(ticket: Ticket) -> list[Staff]:
    """Return everyone who was paged or phoned about a ticket."""
    return list(
        db.session.scalars(
            sa.select(Staff)
            .join(Notification, Notification.staff_id == Staff.id)
            .where(Notification.ticket_id == ticket.id, _paging(Notification.purpose))
            .distinct()
            .order_by(Staff.id)
        )
    )


def _paging(purpose: QueryableAttribute[str]) -> sa.ColumnElement[bool]:
    """Match the purposes of pages and calls."""
    return sa.or_(purpose.like(f"{PAGE}-%"), purpose.like(f"{CALL}-%"))


def is_paging(row: Notification) -> bool:
    """Tell whether a notification pages or phones someone about an emergency."""
    return row.purpose.startswith((f"{PAGE}-", f"{CALL}-"))


def cancel_pending_pages(ticket: Ticket, why: str) -> None:
    """Stop pages and calls not yet sent (acknowledged, downgraded, resolved)."""
    db.session.execute(
        sa.update(Notification)
        .where(
            Notification.ticket_id == ticket.id,
            Notification.status == NotificationStatus.PENDING,
            _paging(Notification.purpose),
        )
        .values(status=NotificationStatus.FAILED, last_error=outbox.WITHDRAWN + why)
    )


def latest_open_emergency_for(member: Staff) -> Ticket | None:
    """Return the newest unacknowledged emergency paged to this staff member."""
    return db.session.scalar(
        sa.select(Ticket)
        .join(Notification, Notification.ticket_id == Ticket.id)
        .where(
            Ticket.kind == TicketKind.EMERGENCY,
            Ticket.acknowledged_at.is_(None),
            Notification.staff_id == member.id,
            _paging(Notification.purpose),
        )
        .order_by(Ticket.id.desc())
        .limit(1)
    )


def repage(ticket_id: int, now: datetime | None = None) -> bool:
    """Page again if the ticket is still unacknowledged and due; escalate after the limit."""
    now = now or utcnow()
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.acknowledged_at is not None or not ticket.is_open:
        return False
    if ticket.next_page_at is None or ticket.next_page_at > now:
        return False
    limit = int(current_app.config["EMERGENCY_REPAGE_LIMIT"])
    current = ticket.page_round
    escalate = current >= limit + 1
    next_at = None if escalate else now + _interval()
    # Only one worker wins the round, however many run this at once.
    won = rows_changed(
        sa.update(Ticket)
        .where(
            Ticket.id == ticket_id, Ticket.page_round == current, Ticket.acknowledged_at.is_(None)
        )
        .values(page_round=current + 1, next_page_at=next_at)
    )
    if won != 1:
        db.session.rollback()
        return False
    db.session.refresh(ticket)
    rows = page_team(ticket, on_call_only=not escalate)
    if escalate:
        rows += [
            messages.email(ticket, "admin_unacknowledged", admin.email, "escalation", staff=admin)
            for admin in db.session.scalars(
                sa.select(Staff).where(Staff.active, Staff.role == StaffRole.ADMIN)
            )
        ]
    db.session.commit()
    outbox.schedule(rows)
    if next_at is not None:
        schedule_repage(ticket.id, next_at)
    return True


def repage_due(now: datetime | None = None) -> int:
    """Re-page every emergency whose next page is due (the schedule lives in the database)."""
    now = now or utcnow()
    due = db.session.scalars(
        sa.select(Ticket.id).where(
            Ticket.kind == TicketKind.EMERGENCY,
            Ticket.acknowledged_at.is_(None),
            Ticket.next_page_at <= now,
        )
    ).all()
    return sum(repage(ticket_id, now) for ticket_id in due)


def report_unpaged(row: Notification) -> list[Notification]:
    """E-mail staff that a page did not reach someone (failed send or delivery receipt)."""
    a_page = row.channel == NotificationChannel.SMS and row.purpose.startswith(PAGE)
    if not a_page or row.ticket is None:
        return []
    if outbox.withdrawn(row):
        return []
    return messages.email_staff(row.ticket, "staff_page_failed", "page-failed", failed=row)


def report_flood(site_key: str, address: str) -> None:
    """E-mail staff once per site and hour that an address hit the emergency form's limit."""
    site = Site.find_by_key(site_key)
    if site is None:
        return
    hour = utcnow().strftime("%Y-%m-%dT%H")
    outbox.tell_staff_once(
        f"flood:{site.id}:{hour}",
        "staff_flood",
        "flood",
        site=site,
        client=site.client,
        address=address,
    )
