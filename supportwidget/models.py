"""Database models: clients, sites, staff, tickets and the notification outbox."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    joinedload,
    mapped_column,
    registry,
    relationship,
)
from werkzeug.routing import IntegerConverter
from werkzeug.security import check_password_hash, generate_password_hash

from supportwidget.vocab import NotificationStatus, StaffRole, TicketKind, TicketStatus


class UTCDateTime(sa.types.TypeDecorator):
    """Store aware datetimes as naive UTC so SQLite and PostgreSQL agree."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    registry = registry(
        type_annotation_map={datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[str]: sa.JSON}
    )


db = SQLAlchemy(model_class=Base)

if TYPE_CHECKING:
    # mypy cannot use a class held in an attribute as a base; db.Model is Base plus
    # Flask-SQLAlchemy's table naming and session binding, so it is typed as Base.
    Model = Base
else:
    Model = db.Model


# The largest id an INTEGER key column holds (PostgreSQL's is 32-bit): a bigger number
# from a URL, an SMS or a cursor is simply not found, never a database error.
MAX_ID = 2**31 - 1


def parse_id(text: str | None) -> int | None:
    """Return the id a person or URL gave as text, or None if it cannot be one.

    ASCII digits only ('²'.isdigit() is true, int('²') fails) and at most MAX_ID.
    """
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


class IdConverter(IntegerConverter):
    """A URL segment that is a row id: digits, at most MAX_ID."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, max=MAX_ID)


def rows_changed(statement: sa.Update | sa.Delete) -> int:
    """Run an UPDATE or DELETE in the session and return how many rows it changed."""
    # Session.execute is typed as returning Result; a DML statement's result is a CursorResult.
    return cast("sa.CursorResult[Any]", db.session.execute(statement)).rowcount


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def new_site_key() -> str:
    """Return a fresh, unguessable public site key."""
    return secrets.token_urlsafe(18)


class SlaPlan(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    hours: Mapped[str] = mapped_column(sa.String(300))
    holiday_country: Mapped[str | None] = mapped_column(sa.String(12))
    extra_holidays: Mapped[list[str]] = mapped_column(default=list)
    first_response_minutes: Mapped[int]
    resolution_minutes: Mapped[int]
    emergency_response_minutes: Mapped[int | None]


class Client(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    emails: Mapped[list[str]] = mapped_column(default=list)
    sla_plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sla_plan.id"))
    sla_start: Mapped[date | None]
    sla_end: Mapped[date | None]
    hourly_rate: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # E-mail the contacts when the uptime watch opens an emergency ("we are on it").
    watch_notify: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    sla_plan: Mapped[SlaPlan | None] = relationship()
    sites: Mapped[list[Site]] = relationship(back_populates="client")

    def active_plan(self, on: date) -> SlaPlan | None:
        """Return the SLA plan in force on a date, or None outside the contract."""
        if self.sla_plan is None:
            return None
        if self.sla_start and on < self.sla_start:
            return None
        if self.sla_end and on > self.sla_end:
            return None
        return self.sla_plan


class Site(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("client.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    url: Mapped[str] = mapped_column(sa.String(500))
    site_key: Mapped[str] = mapped_column(sa.String(64), unique=True, default=new_site_key)
    # After a key rotation the old key keeps working until this time, so embeds can be updated.
    previous_site_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    previous_key_expires_at: Mapped[datetime | None]
    allowed_origins: Mapped[list[str]] = mapped_column(default=list)
    label: Mapped[str | None] = mapped_column(sa.String(60))
    color: Mapped[str | None] = mapped_column(sa.String(20))
    secret: Mapped[str] = mapped_column(sa.String(64), default=lambda: secrets.token_hex(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # --- the uptime watch (watch/): on by default, the site's URL, WATCH_INTERVAL ---
    watch_enabled: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    watch_url: Mapped[str | None] = mapped_column(sa.String(500))  # None: the site's URL
    watch_expect: Mapped[str | None] = mapped_column(sa.String(200))
    watch_interval: Mapped[int | None]  # seconds; None: WATCH_INTERVAL
    # The claim: a watcher takes a due site by moving this on (None: due now).
    watch_next_at: Mapped[datetime | None] = mapped_column(index=True)
    watch_claimed_by: Mapped[str | None] = mapped_column(sa.String(100))
    watch_checked_at: Mapped[datetime | None]
    watch_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    # Content fingerprint of the homepage at the last good check (hacked signals).
    watch_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    # The certificate expiry a "expires soon" ticket was opened for (once per certificate).
    watch_tls_warned: Mapped[datetime | None]

    client: Mapped[Client] = relationship(back_populates="sites")
    heartbeat: Mapped[SiteHeartbeat | None] = relationship(back_populates="site")

    @classmethod
    def find_by_key(cls, site_key: str) -> Site | None:
        """Return the site a key names: its current key, or a rotated one still in its grace."""
        # Pages show the client's name: load it with the site.
        with_client = sa.select(cls).options(joinedload(cls.client))
        site = db.session.scalar(with_client.where(cls.site_key == site_key))
        if site is None:
            site = db.session.scalar(
                with_client.where(
                    cls.previous_site_key == site_key, cls.previous_key_expires_at > utcnow()
                )
            )
        return site

    def rotate_key(self, grace: timedelta) -> None:
        """Issue a new site key; the current one keeps working for `grace`."""
        self.previous_site_key = self.site_key
        self.previous_key_expires_at = utcnow() + grace
        self.site_key = new_site_key()

    @property
    def watched_url(self) -> str:
        """Return the URL the uptime watch checks."""
        return self.watch_url or self.url


class Staff(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    on_call: Mapped[bool] = mapped_column(default=False)
    role: Mapped[str] = mapped_column(sa.String(10), default=StaffRole.AGENT)
    password_hash: Mapped[str | None] = mapped_column(sa.String(300))
    api_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    session_version: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN

    def set_password(self, password: str) -> None:
        """Hash and store a new password."""
        method = current_app.config["PASSWORD_HASH_METHOD"]
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        """Return whether the password matches the stored hash."""
        if not self.password_hash:
            return False
        return check_password_hash(self.password_hash, password)


class Ticket(Model):
    __table_args__ = (
        # The staff queue's order; also counts the few tickets behind a new one.
        sa.Index("ix_ticket_queue", "queue_rank", "effective_due_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(10), default=TicketKind.STANDARD)
    category: Mapped[str | None] = mapped_column(sa.String(10))
    subject: Mapped[str] = mapped_column(sa.String(150))
    description: Mapped[str] = mapped_column(sa.Text)
    requester_name: Mapped[str] = mapped_column(sa.String(120))
    requester_email: Mapped[str] = mapped_column(sa.String(254))
    callback_phone: Mapped[str | None] = mapped_column(sa.String(40))
    # The requester's answer to the emergency category's one question (offline: yes / no).
    category_answer: Mapped[str | None] = mapped_column(sa.String(500))
    # What our own fetch of the site's URL found when an offline emergency was filed.
    site_check: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    needed_by: Mapped[date | None]
    urgency_note: Mapped[str | None] = mapped_column(sa.String(500))
    page_meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    identity_verified: Mapped[bool] = mapped_column(default=False)
    # The requester's language, for every e-mail they get about this ticket.
    locale: Mapped[str | None] = mapped_column(sa.String(10))
    billing_consent: Mapped[bool] = mapped_column(default=False)
    form_nonce: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20), default=TicketStatus.NEW, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sla_plan_name: Mapped[str | None] = mapped_column(sa.String(80))
    first_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    effective_due_at: Mapped[datetime | None]
    needed_by_conflict: Mapped[bool] = mapped_column(default=False)
    # 0 unacknowledged emergency, 1 acknowledged open emergency, 2 standard, 9 closed.
    queue_rank: Mapped[int] = mapped_column(default=2)
    first_responded_at: Mapped[datetime | None]
    breach_warned: Mapped[list[str]] = mapped_column(default=list)
    breached: Mapped[list[str]] = mapped_column(default=list)
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    acknowledged_at: Mapped[datetime | None]
    page_round: Mapped[int] = mapped_column(default=0)
    next_page_at: Mapped[datetime | None] = mapped_column(index=True)
    triage_decision: Mapped[str | None] = mapped_column(sa.String(10))
    triage_reason: Mapped[str | None] = mapped_column(sa.Text)
    # Who took the ticket: once set, only they hear about the requester's replies.
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    # Opened by the uptime watch, not by a person (no billing consent, contacts told).
    opened_by_watch: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    site: Mapped[Site] = relationship()
    acknowledged_by: Mapped[Staff | None] = relationship(foreign_keys=[acknowledged_by_id])
    assignee: Mapped[Staff | None] = relationship(foreign_keys=[assignee_id])
    attachments: Mapped[list[Attachment]] = relationship(back_populates="ticket")
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id"
    )
    notifications: Mapped[list[Notification]] = relationship(
        back_populates="ticket", order_by="Notification.id"
    )

    @property
    def reference(self) -> str:
        return f"SUP-{self.id}"

    @property
    def is_open(self) -> bool:
        # Not "in open()": a ticket not yet flushed has no status yet, and it is new.
        return self.status not in TicketStatus.finished()

    @property
    def is_emergency(self) -> bool:
        return self.kind == TicketKind.EMERGENCY

    @property
    def requester_vouched_for(self) -> bool:
        """Tell whether the requester's address is known to be theirs: signed or a contact.

        Anyone can type someone else's address into a public form; mail to an address
        nobody vouched for must not carry the sender's own words to a stranger.
        """
        address = self.requester_email.strip().lower()
        contacts = {e.strip().lower() for e in self.site.client.emails or []}
        return self.identity_verified or address in contacts

    def update_queue_rank(self) -> None:
        """Recompute where the ticket sorts: emergencies first, closed work last."""
        if not self.is_open:
            self.queue_rank = 9
        elif self.is_emergency:
            self.queue_rank = 1 if self.acknowledged_at else 0
        else:
            self.queue_rank = 2


# Rows of OpenTicketCount: concurrent filings add to different rows (ticket id modulo this).
OPEN_COUNT_SHARDS = 16


class OpenTicketCount(Model):
    """How many tickets are open (queue_rank < 9), spread over OPEN_COUNT_SHARDS rows.

    Database triggers keep it (migration a3f17c0b9d42), so every writer, ORM or not, does;
    a queue position then costs the few tickets behind it, not the whole backlog ahead.
    A migration that rebuilds the ticket table on SQLite (batch mode) must recreate them.
    """

    shard: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    open_tickets: Mapped[int] = mapped_column(default=0)


class Attachment(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    # The requester's reply it came with; None for the request's own screenshots.
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket_event.id"))
    filename: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(40))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]

    ticket: Mapped[Ticket] = relationship(back_populates="attachments")


class Notification(Model):
    """One outgoing message: the transactional outbox row."""

    # The admins' digest looks up failed rows it has not listed yet.
    __table_args__ = (sa.Index("ix_notification_unreported", "status", "failure_reported_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(5))
    recipient: Mapped[str] = mapped_column(sa.String(254))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    purpose: Mapped[str] = mapped_column(sa.String(40))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str | None] = mapped_column(sa.Text)
    reply_to: Mapped[str | None] = mapped_column(sa.String(254))
    with_attachments: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(
        sa.String(10), default=NotificationStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    delivery_status: Mapped[str | None] = mapped_column(sa.String(20))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Created, or sent again by staff: passing failures are retried for a while after it.
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When a failed row was listed in the admins' digest (None: not yet, or not failed).
    failure_reported_at: Mapped[datetime | None]

    ticket: Mapped[Ticket | None] = relationship(back_populates="notifications")
    staff: Mapped[Staff | None] = relationship()


class TicketEvent(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    staff: Mapped[Staff | None] = relationship()


class Heartbeat(Model):
    """Last sign of life from each worker, read by /healthz."""

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    beat_at: Mapped[datetime]
    holder: Mapped[str | None] = mapped_column(sa.String(100))


class SiteHeartbeat(Model):
    """The latest heartbeat from a site's WordPress plugin: versions and the core-file check."""

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), primary_key=True)
    received_at: Mapped[datetime]
    # When the plugin signed it (its clock), as the signature says.
    signed_at: Mapped[datetime]
    wordpress: Mapped[str] = mapped_column(sa.String(40))
    php: Mapped[str] = mapped_column(sa.String(40))
    theme: Mapped[str] = mapped_column(sa.String(200))
    plugin_version: Mapped[str] = mapped_column(sa.String(40))
    #: Active plugins: [{"file", "name", "version"}].
    plugins: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    #: ok (every core file matches), changed (modified or added files), unavailable.
    core_status: Mapped[str] = mapped_column(sa.String(12))
    #: The core-file check: checked, modified/added [{"path", "md5"}], missing [path].
    core: Mapped[dict[str, Any]] = mapped_column(default=dict)

    site: Mapped[Site] = relationship(back_populates="heartbeat")

    #: The plugin beats every 5 minutes: three missed beats in a row are worth a look.
    STALE_AFTER = timedelta(minutes=15)

    def is_stale(self, now: datetime | None = None) -> bool:
        """Tell whether the site has been silent for longer than STALE_AFTER."""
        return (now or utcnow()) - self.received_at > self.STALE_AFTER


class TimeEntry(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    minutes: Mapped[int]
    note: Mapped[str | None] = mapped_column(sa.String(500))
    billable: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    ticket: Mapped[Ticket] = relationship()
    staff: Mapped[Staff | None] = relationship()


class SlaPause(Model):
    """A span while the ticket waited on the client: the resolution clock stops."""

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class HandledMessage(Model):
    """Messages handled once and only once: webhook ids, mail-in messages, flood alerts.

    A second arrival with the same key is a replay or a retry, and is refused or ignored.
    """

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    @classmethod
    def first_time(cls, key: str) -> bool:
        """Record a key in the current transaction; False if it was handled before."""
        try:
            with db.session.begin_nested():  # a savepoint: a clash undoes only this row
                db.session.add(cls(key=key[:100]))
        except IntegrityError:
            return False
        return True


class HeldMessage(Model):
    """Mail-in our MTA could not authenticate that would have threaded or opened a ticket.

    Kept, not acted on, until a member of staff accepts it (it is then filed as if the
    sender had been authenticated) or drops it.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    # The message's mail-in key: the MTA's retry of the same message is held only once.
    key: Mapped[str] = mapped_column(sa.String(100), unique=True)
    sender: Mapped[str] = mapped_column(sa.String(254))
    sender_name: Mapped[str] = mapped_column(sa.String(120))
    subject: Mapped[str] = mapped_column(sa.String(200))
    preview: Mapped[str] = mapped_column(sa.Text)
    # What filing it would do ("reply to SUP-3", "new ticket for Acme Shop").
    target: Mapped[str] = mapped_column(sa.String(200))
    # What our MTA's Authentication-Results said.
    evidence: Mapped[str] = mapped_column(sa.String(500))
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SiteCheck(Model):
    """One check of a site by the uptime watch (kept CHECKS_KEPT; hours live on in SiteHour)."""

    __table_args__ = (sa.Index("ix_site_check_site_time", "site_id", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    checked_at: Mapped[datetime] = mapped_column(index=True)
    ok: Mapped[bool]
    status: Mapped[int | None]
    elapsed_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(sa.String(200))
    tls_days: Mapped[int | None]
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))

    CHECKS_KEPT = timedelta(days=2)


class SiteHour(Model):
    """One hour of a site's checks, summed: uptime over 24 h, 7 d and 30 d (kept 90 days)."""

    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("site.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    checks: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    elapsed_ms: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # of the good checks

    HOURS_KEPT = timedelta(days=90)


class SiteIncident(Model):
    """A site found down by the watch, from its confirmed failure until it is over.

    It lasts while its emergency ticket is open: failures in between fold into it.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    category: Mapped[str] = mapped_column(sa.String(10))
    started_at: Mapped[datetime]
    # When the site last came back (None while it is down).
    recovered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None] = mapped_column(index=True)
    error: Mapped[str | None] = mapped_column(sa.String(200))
    downs: Mapped[int] = mapped_column(default=1)

    site: Mapped[Site] = relationship()
    ticket: Mapped[Ticket | None] = relationship()
