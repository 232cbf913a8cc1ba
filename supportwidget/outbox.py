"""The transactional outbox: claim a Notification row, send it once, record the outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from . import messages
from .mail import PermanentMailError, TransientMailError, send_email
from .models import Notification, db, utcnow
from .sms import sms

log = logging.getLogger(__name__)

# Called with a Notification that failed for good; returns follow-up rows to send.
failure_hooks: list[Callable[[Notification], list[Notification]]] = []
# Delivery receipts that mean the message never reached the person.
FAILED_DELIVERY = frozenset({"failed", "expired", "rejected"})


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next attempt: 15 s, 30 s, 60 s … capped at one hour."""
    return timedelta(seconds=min(15 * 2 ** max(attempts - 1, 0), 3600))


def claim(notification_id: int, now: datetime | None = None) -> Notification | None:
    """Mark a due row as sending, atomically, so only one worker sends it."""
    now = now or utcnow()
    result = db.session.execute(
        sa.update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == "pending",
            Notification.next_attempt_at <= now,
        )
        .values(status="sending", attempts=Notification.attempts + 1, claimed_at=now)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(Notification, notification_id, populate_existing=True)


def deliver(notification_id: int, now: datetime | None = None) -> str | None:
    """Send one notification if it is due and unclaimed; return its new status."""
    row = claim(notification_id, now)
    if row is None:
        return None
    try:
        outcome, detail = _send(row)
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the row claimed forever
        log.exception("sending notification %s crashed", row.id)
        outcome, detail = "retry", f"internal error: {exc}"
    _record(row, outcome, detail)
    return row.status


def _send(row: Notification) -> tuple[str, str | None]:
    """Send through the row's channel; return (sent|retry|failed, provider id or error)."""
    if row.channel == "email":
        try:
            send_email(messages.email_message(row))
        except TransientMailError as exc:
            return "retry", str(exc)
        except PermanentMailError as exc:
            return "failed", str(exc)
        return "sent", None
    result = sms.send(row.recipient, row.body_text, client_ref=str(row.id))
    if result.outcome == "sent":
        return "sent", result.message_id
    return result.outcome, result.error


def _record(row: Notification, outcome: str, detail: str | None) -> None:
    now = utcnow()
    if outcome == "sent":
        row.status, row.sent_at, row.provider_id, row.last_error = "sent", now, detail, None
    elif outcome == "retry" and row.attempts < current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        row.status, row.last_error = "pending", detail
        row.next_attempt_at = now + backoff(row.attempts)
    else:
        row.status, row.last_error = "failed", detail
    follow_ups = (
        [new for hook in failure_hooks for new in hook(row)] if row.status == "failed" else []
    )
    db.session.commit()
    schedule(follow_ups)
    if row.status == "pending":
        schedule([row], at=row.next_attempt_at)
    log.info(
        "notification %s (%s, %s) %s%s",
        row.id,
        row.channel,
        row.purpose,
        row.status,
        f": {detail}" if detail else "",
    )


def record_delivery(row: Notification, status: str, detail: str) -> None:
    """Store a delivery receipt; a message that never arrived counts as failed (staff told)."""
    row.delivery_status = status
    follow_ups: list[Notification] = []
    if status in FAILED_DELIVERY:
        row.last_error = f"delivery {status} ({detail})"
        follow_ups = [new for hook in failure_hooks for new in hook(row)]
    db.session.commit()
    schedule(follow_ups)


def due(rows: Iterable[Notification]) -> list[tuple[int, str]]:
    """Return (id, channel) of flushed rows, to schedule after the commit without re-reading."""
    return [(row.id, row.channel) for row in rows]


def schedule(rows: Iterable[Notification], at: datetime | None = None) -> None:
    """Hand committed rows to the queue; the re-drive catches any the queue loses."""
    schedule_due(due(rows), at)


def schedule_due(pairs: Iterable[tuple[int, str]], at: datetime | None = None) -> None:
    """Queue deliveries by (id, channel)."""
    from .worker import enqueue_delivery

    for notification_id, channel in pairs:
        try:
            enqueue_delivery(notification_id, channel, at)
        except Exception:  # noqa: BLE001 - the row is durable; redrive will send it
            log.exception("could not enqueue notification %s; re-drive will", notification_id)


def redrive(now: datetime | None = None) -> int:
    """Re-queue due pending rows and rows stuck in sending past their lease."""
    now = now or utcnow()
    lease = timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
    db.session.execute(
        sa.update(Notification)
        .where(Notification.status == "sending", Notification.claimed_at < now - lease)
        .values(status="pending", last_error="worker stopped while sending; retrying")
    )
    db.session.commit()
    due = db.session.scalars(
        sa.select(Notification)
        .where(Notification.status == "pending", Notification.next_attempt_at <= now)
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
            Notification.status == "pending", Notification.next_attempt_at <= now
        )
    ).all()
    for notification_id in ids:
        deliver(notification_id, now)
    return len(ids)
