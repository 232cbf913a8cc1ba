"""The transactional outbox: claim a Notification row, send it once, record the outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from supportwidget.models import HandledMessage, Notification, Staff, db, utcnow
from supportwidget.notify import messages
from supportwidget.notify.channels import CHANNELS
from supportwidget.notify.channels.base import Outcome
from supportwidget.platform import database, jobs
from supportwidget.vocab import NotificationChannel, NotificationStatus, StaffRole

log = logging.getLogger(__name__)

#: Called with a Notification that failed for good; returns follow-up rows to send.
FailureHook = Callable[[Notification], list[Notification]]
# Delivery receipts that mean the message never reached the person.
FAILED_DELIVERY = frozenset({"failed", "expired", "rejected"})
# How the error of a row withdrawn on purpose begins (a page nobody needs any more).
WITHDRAWN = "not sent: "
DIGEST = "failure-digest"
DIGEST_LISTED = 50  # failures named in one digest; the rest are counted
# Rows per delivery job at most (e-mail: one claim, one SMTP connection and one commit for
# them all). A worker killed mid-batch resends at most this many, e-mail with its Message-ID.
BATCH = max(channel.batch for channel in CHANNELS.values())
# Retry intervals grow no further, so a relay that comes back is noticed within minutes.
MAX_INTERVAL = timedelta(minutes=15)


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next attempt: 15 s, 30 s, 60 s … capped at 15 minutes."""
    return min(timedelta(seconds=15 * 2 ** min(max(attempts - 1, 0), 10)), MAX_INTERVAL)


def retry_window(row: Notification) -> timedelta:
    """Return how long after it was queued a row's passing failures are retried.

    E-mail: OUTBOX_RETRY_HOURS, so a relay outage of days loses nothing. SMS and calls: until
    their emergency's next re-page round, which pages again; a page hours late helps nobody.
    """
    if row.channel != NotificationChannel.EMAIL:
        return timedelta(seconds=float(current_app.config["EMERGENCY_REPAGE_INTERVAL"]))
    return timedelta(hours=float(current_app.config["OUTBOX_RETRY_HOURS"]))


def next_attempt(row: Notification, now: datetime) -> datetime | None:
    """Return when to try a row again after a passing failure; None once its window is over."""
    at = now + backoff(row.attempts)
    return at if at <= row.queued_at + retry_window(row) else None


def claim(ids: list[int], now: datetime | None = None) -> list[Notification]:
    """Mark the due rows among `ids` as sending, atomically, so only one worker sends each."""
    now = now or utcnow()
    rows = db.session.scalars(
        sa.update(Notification)
        .where(
            Notification.id.in_(ids),
            Notification.status == NotificationStatus.PENDING,
            Notification.next_attempt_at <= now,
        )
        .values(
            status=NotificationStatus.SENDING, attempts=Notification.attempts + 1, claimed_at=now
        )
        .returning(Notification),
        execution_options={"populate_existing": True},
    ).all()
    database.commit_keeping_loaded()  # the rows are ours now: no need to read them back
    return sorted(rows, key=lambda row: row.id)


def deliver(notification_ids: int | list[int], now: datetime | None = None) -> list[str]:
    """Send the due, unclaimed rows among the ids (one SMTP connection); return new statuses."""
    ids = [notification_ids] if isinstance(notification_ids, int) else list(notification_ids)
    rows = claim(ids, now)
    if not rows:
        return []
    outcomes = _send_all(rows)
    _record(rows, outcomes, now or utcnow())
    return [row.status for row in rows]


def _send_all(rows: list[Notification]) -> list[Outcome]:
    """Send the rows through their channels; start none once half the claim's lease is gone."""
    until = time.monotonic() + current_app.config["OUTBOX_LEASE_SECONDS"] / 2
    outcomes: dict[int, Outcome] = {}
    for name in dict.fromkeys(row.channel for row in rows):
        batch = [row for row in rows if row.channel == name]
        channel = CHANNELS.get(name)
        if channel is None:  # never guess: an unknown channel is not an SMS
            # A fault, not a withdrawal (WITHDRAWN): the admins' digest lists it.
            sent: list[Outcome] = [("failed", f"no channel {name!r}: not sent")] * len(batch)
        else:
            sent = channel.send(batch, until)
        outcomes.update(zip((row.id for row in batch), sent, strict=True))
    return [outcomes[row.id] for row in rows]


def _record(rows: list[Notification], outcomes: list[Outcome], now: datetime) -> None:
    """Store every outcome in one commit, then queue follow-ups, retries and released rows."""
    follow_ups: list[Notification] = []
    for row, (outcome, detail) in zip(rows, outcomes, strict=True):
        retry_at = next_attempt(row, now) if outcome == "retry" else None
        if outcome == "release":  # not attempted: back in the queue as it was
            row.status, row.attempts = NotificationStatus.PENDING, row.attempts - 1
            row.next_attempt_at = now
        elif outcome == "sent":
            row.status, row.sent_at = NotificationStatus.SENT, now
            row.provider_id, row.last_error = detail, None
        elif retry_at is not None:
            row.status, row.last_error = NotificationStatus.PENDING, detail
            row.next_attempt_at = retry_at
        else:
            row.status, row.last_error = NotificationStatus.FAILED, detail
        if row.status == NotificationStatus.FAILED:
            follow_ups += _follow_ups(row)
    database.commit_keeping_loaded()  # the log lines and retries below read the rows
    schedule(follow_ups)
    retries: dict[datetime, list[Notification]] = {}
    for row, (outcome, detail) in zip(rows, outcomes, strict=True):
        if row.status == NotificationStatus.PENDING:
            retries.setdefault(row.next_attempt_at, []).append(row)
        log.info(
            "notification %s (%s, %s) %s%s",
            row.id,
            row.channel,
            row.purpose,
            "released" if outcome == "release" else row.status,
            f": {detail}" if detail else "",
        )
    for at, due_rows in retries.items():
        schedule(due_rows, at=at)


def record_delivery(row: Notification, status: str, detail: str) -> None:
    """Store a delivery receipt; a message that never arrived counts as failed (staff told)."""
    row.delivery_status = status
    follow_ups: list[Notification] = []
    if status in FAILED_DELIVERY:
        row.last_error = f"delivery {status} ({detail})"
        follow_ups = _follow_ups(row)
    db.session.commit()
    schedule(follow_ups)


def _follow_ups(row: Notification) -> list[Notification]:
    """Return the rows the app's failure hooks queue about a row that failed for good."""
    hooks: Sequence[FailureHook] = current_app.extensions["supportwidget-outbox"]
    return [new for hook in hooks for new in hook(row)]


def due(rows: Iterable[Notification]) -> list[tuple[int, str]]:
    """Return (id, channel) of flushed rows, to schedule after the commit without re-reading."""
    return [(row.id, row.channel) for row in rows]


def schedule(rows: Iterable[Notification], at: datetime | None = None) -> None:
    """Hand committed rows to the queue; the re-drive catches any the queue loses."""
    schedule_due(due(rows), at)


def tell_staff_once(key: str, template: str, purpose: str, **context: Any) -> bool:
    """E-mail every staff member a notice, unless one went out under this key; True if sent."""
    if not HandledMessage.first_time(key):
        return False
    rows = [
        messages.notice(template, recipient, purpose, staff=member, **context)
        for recipient, member in messages.staff_recipients()
    ]
    db.session.commit()
    schedule(rows)
    return True


def schedule_due(pairs: Iterable[tuple[int, str]], at: datetime | None = None) -> None:
    """Queue deliveries by (id, channel): on the channel's lane, in the channel's batches."""
    ids: dict[str, list[int]] = {name: [] for name in CHANNELS}
    for notification_id, channel_name in pairs:
        ids.setdefault(channel_name, []).append(notification_id)
    fallback = next(iter(CHANNELS.values()))  # a lane for unknown channels: deliver fails them
    for name, channel_ids in ids.items():
        channel = CHANNELS.get(name, fallback)
        for chunk in _chunks(channel_ids, channel.batch if name in CHANNELS else 1):
            try:
                jobs.enqueue("deliver", chunk, lane=channel.lane, at=at)
            except Exception:  # noqa: BLE001 - the rows are durable; redrive will send them
                log.exception("could not enqueue notifications %s; re-drive will", chunk)


def _chunks(ids: list[int], size: int = BATCH) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def redrive(now: datetime | None = None) -> int:
    """Re-queue due pending rows and rows stuck in sending past their lease."""
    now = now or utcnow()
    lease = timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
    db.session.execute(
        sa.update(Notification)
        .where(
            Notification.status == NotificationStatus.SENDING,
            Notification.claimed_at < now - lease,
        )
        .values(
            status=NotificationStatus.PENDING, last_error="worker stopped while sending; retrying"
        )
    )
    db.session.commit()
    due = db.session.scalars(
        sa.select(Notification)
        .where(
            Notification.status == NotificationStatus.PENDING, Notification.next_attempt_at <= now
        )
        .order_by(Notification.channel.desc(), Notification.id)
        .limit(1000)
    ).all()
    schedule(due)
    return len(due)


def deliver_due(now: datetime | None = None) -> int:
    """Send every due row in this process (tests, `worker --once`); return how many."""
    now = now or utcnow()
    ids = db.session.scalars(
        sa.select(Notification.id).where(
            Notification.status == NotificationStatus.PENDING,
            Notification.next_attempt_at <= now,
        )
    ).all()
    for chunk in _chunks(list(ids)):
        deliver(chunk, now)
    return len(ids)


def withdrawn(row: Notification) -> bool:
    """Tell whether a row was withdrawn on purpose rather than failed."""
    return (row.last_error or "").startswith(WITHDRAWN)


def requeue(row: Notification, now: datetime) -> None:
    """Make a failed row pending again, with a fresh retry window (not yet committed)."""
    row.status, row.attempts, row.last_error = NotificationStatus.PENDING, 0, None
    row.queued_at = row.next_attempt_at = now
    row.claimed_at = row.failure_reported_at = None


def report_failures(now: datetime | None = None) -> int:
    """E-mail the admins one digest of the rows that failed since the last one, hourly at most.

    Returns how many digest e-mails were queued. A failed digest is never reported.
    """
    now = now or utcnow()
    hour = f"{DIGEST}:{now:%Y-%m-%dT%H}"
    if db.session.get(HandledMessage, hour) is not None:
        return 0  # this hour's digest went out: later failures wait for the next one
    unreported = db.session.scalars(
        sa.select(Notification)
        .where(
            Notification.status == NotificationStatus.FAILED,
            Notification.failure_reported_at.is_(None),
        )
        .order_by(Notification.id)
    ).all()
    failed = [r for r in unreported if r.purpose != DIGEST and not withdrawn(r)]
    admins = db.session.scalars(
        sa.select(Staff).where(Staff.active, Staff.role == StaffRole.ADMIN)
    ).all()
    if failed and not admins:
        return 0  # kept unreported until there is someone to tell
    for row in unreported:
        row.failure_reported_at = now
    digests = [_digest(failed, admin) for admin in admins] if failed else []
    if digests:
        HandledMessage.first_time(hour)
    db.session.commit()
    schedule(digests)
    return len(digests)


def _digest(failed: list[Notification], admin: Staff) -> Notification:
    """Render one admin's digest of failed rows into an outbox row."""
    listed = [
        (row, row.ticket_id and messages.public_url(f"/dashboard/tickets/SUP-{row.ticket_id}"))
        for row in failed[:DIGEST_LISTED]
    ]
    return messages.notice(
        "admin_failure_digest",
        admin.email,
        DIGEST,
        staff=admin,
        listed=listed,
        total=len(failed),
    )


def init_app(app: Flask, on_failure: Sequence[FailureHook] = ()) -> None:
    """Bind what follows a notification that failed for good (e.g. "could not page Bob")."""
    app.extensions["supportwidget-outbox"] = tuple(on_failure)
