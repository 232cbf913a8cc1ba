"""Emergency workflows: open, page the on-call team, acknowledge, re-page, escalate."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from supportwidget.models import (
    Notification,
    Site,
    Staff,
    Ticket,
    TicketEvent,
    db,
    parse_id,
    utcnow,
)
from supportwidget.notify import messages, outbox
from supportwidget.notify.channels import CHANNELS
from supportwidget.platform import jobs
from supportwidget.sla import schedules as sla
from supportwidget.tickets import filing as tickets
from supportwidget.vocab import (
    NotificationChannel,
    NotificationStatus,
    StaffRole,
    TicketKind,
    TicketStatus,
)

log = logging.getLogger(__name__)
PAGE = "page"


class AckLinkExpired(Exception):
    """A genuine acknowledgement link older than ACK_LINK_MAX_AGE; names its ticket."""

    def __init__(self, ticket: Ticket) -> None:
        super().__init__(f"the acknowledgement link for {ticket.reference} has expired")
        self.ticket = ticket


def ack_code(ticket_id: int, staff_id: int, issued_at: datetime | None = None) -> str:
    """Return the short signed code of a one-time acknowledgement link (fits in an SMS).

    It carries its issue time (unix seconds in hex) under the signature, so it expires.
    """
    stamp = f"{int((issued_at or utcnow()).timestamp()):x}"
    return f"{ticket_id}-{staff_id}-{stamp}-{_ack_mac(ticket_id, staff_id, stamp)}"


def _ack_mac(ticket_id: int, staff_id: int, stamp: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    message = f"ack:{ticket_id}:{staff_id}:{stamp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]


def read_ack_code(code: str, now: datetime | None = None) -> tuple[Ticket, Staff] | None:
    """Return the ticket and staff member of a valid code; raise AckLinkExpired if too old."""
    parts = code.split("-")
    if len(parts) != 4 or not code.isascii():  # compare_digest refuses non-ASCII text
        return None
    ticket_id, staff_id, stamp, mac = parse_id(parts[0]), parse_id(parts[1]), parts[2], parts[3]
    if ticket_id is None or staff_id is None or not re.fullmatch(r"[0-9a-f]{1,12}", stamp):
        return None
    if not hmac.compare_digest(_ack_mac(ticket_id, staff_id, stamp), mac):
        return None
    ticket, member = db.session.get(Ticket, ticket_id), db.session.get(Staff, staff_id)
    if ticket is None or member is None:
        return None
    age = (now or utcnow()).timestamp() - int(stamp, 16)
    if age > float(current_app.config["ACK_LINK_MAX_AGE"]):
        raise AckLinkExpired(ticket)
    return ticket, member


def needs_billing_consent(site: Site) -> bool:
    """Tell whether a client must accept the emergency rate: no SLA in force right now."""
    return sla.active_plan_at(site.client, utcnow()) is None


def ack_url(ticket: Ticket, member: Staff) -> str:
    """Return a staff member's acknowledgement link for a ticket."""
    return messages.public_url(f"/a/{ack_code(ticket.id, member.id)}")


def _interval() -> timedelta:
    return timedelta(seconds=float(current_app.config["EMERGENCY_REPAGE_INTERVAL"]))


def open_emergency(
    site: Site,
    request: tickets.Request,
    category: str,
    callback_phone: str | None,
    billing_consent: bool,
) -> Ticket:
    """File an emergency, page the on-call team and e-mail everyone, in one transaction."""

    def build() -> tickets.Built:
        ticket = tickets.new_ticket(
            site,
            request,
            kind=TicketKind.EMERGENCY,
            category=category,
            callback_phone=callback_phone,
            billing_consent=billing_consent,
        )
        db.session.flush()
        schedule_emergency(ticket, site)
        return ticket, notify_emergency(ticket)

    ticket, created = tickets.file_once(request.nonce, build)
    if created:
        schedule_repage(ticket.id, ticket.next_page_at)
    return ticket


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


def schedule_emergency(ticket: Ticket, site: Site) -> None:
    """Put an emergency at the top of the queue and set its first re-page."""
    now = ticket.created_at
    plan = sla.active_plan_at(site.client, now)
    if plan is not None:
        ticket.sla_plan_name = plan.name
        if plan.emergency_response_minutes:
            ticket.first_response_due = now + timedelta(minutes=plan.emergency_response_minutes)
    ticket.effective_due_at = now
    ticket.update_queue_rank()
    ticket.page_round, ticket.next_page_at = 1, now + _interval()


def notify_emergency(ticket: Ticket) -> list[Notification]:
    """Queue the pages, the [EMERGENCY] staff e-mails and the requester's confirmation."""
    rows = page_team(ticket, on_call_only=True)
    rows += [
        messages.email(
            ticket,
            "staff_new_ticket",
            address,
            "staff-emergency",
            staff=member,
            reply_to=ticket.requester_email,
            with_attachments=True,
            ack_url=member and ack_url(ticket, member),
        )
        for address, member in messages.staff_recipients()
    ]
    rows.append(messages.email(ticket, "requester_confirmation", ticket.requester_email, "confirm"))
    return rows


def page_team(ticket: Ticket, on_call_only: bool) -> list[Notification]:
    """Queue one page per on-call staff member (or everyone with a phone).

    With nobody on call (a rota left empty), everyone with a phone is paged at once:
    an emergency is never met with silence until the escalation round.
    """
    everyone = sa.select(Staff).where(Staff.active, Staff.phone.is_not(None)).order_by(Staff.id)
    team = db.session.scalars(everyone.where(Staff.on_call) if on_call_only else everyone).all()
    if not team and on_call_only:
        log.warning("nobody is on call: paging everyone with a phone for %s", ticket.reference)
        team = db.session.scalars(everyone).all()
    rows = [
        messages.sms(
            ticket, "page", member, f"{PAGE}-{ticket.page_round}", ack_url=ack_url(ticket, member)
        )
        for member in team
    ]
    ticket.events.append(
        TicketEvent(
            kind="paged",
            detail={
                "round": ticket.page_round,
                "staff": [m.name for m in team],
            },
        )
    )
    return rows


def acknowledge(ticket: Ticket, member: Staff, via: str) -> bool:
    """Record who took an emergency, stop paging and tell the others; False if already taken."""
    if not ticket.is_emergency or ticket.acknowledged_at is not None:
        return False
    now = utcnow()
    claimed = db.session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=member.id, next_page_at=None)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    db.session.refresh(ticket)
    cancel_pending_pages(ticket, f"{ticket.reference} was acknowledged by {member.name} first")
    ticket.events.append(TicketEvent(kind="acknowledged", staff=member, detail={"via": via}))
    if ticket.status == TicketStatus.NEW:
        ticket.status = TicketStatus.IN_PROGRESS
    ticket.update_queue_rank()
    rows = [
        messages.sms(ticket, "acknowledged", other, "ack-notice", acker=member)
        for other in paged_staff(ticket)
        if other.id != member.id
    ]
    rows.append(
        messages.email(
            ticket, "requester_acknowledged", ticket.requester_email, "ack-requester", acker=member
        )
    )
    db.session.commit()
    outbox.schedule(rows)
    return True


def paged_staff(ticket: Ticket) -> list[Staff]:
    """Return everyone who was paged about a ticket."""
    return list(
        db.session.scalars(
            sa.select(Staff)
            .join(Notification, Notification.staff_id == Staff.id)
            .where(Notification.ticket_id == ticket.id, Notification.purpose.like(f"{PAGE}-%"))
            .distinct()
        )
    )


def cancel_pending_pages(ticket: Ticket, why: str) -> None:
    """Stop pages not yet sent (acknowledged or downgraded): nobody is paged again."""
    db.session.execute(
        sa.update(Notification)
        .where(
            Notification.ticket_id == ticket.id,
            Notification.status == NotificationStatus.PENDING,
            Notification.purpose.like(f"{PAGE}-%"),
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
            Notification.purpose.like(f"{PAGE}-%"),
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
    won = db.session.execute(
        sa.update(Ticket)
        .where(
            Ticket.id == ticket_id, Ticket.page_round == current, Ticket.acknowledged_at.is_(None)
        )
        .values(page_round=current + 1, next_page_at=next_at)
    ).rowcount
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
