"""Staff coming and going: invitations with a one-time set-password link, disable, enable.

The command line and the admin pages both call these.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from supportwidget.models import Notification, Staff, db, utcnow
from supportwidget.notify import messages, outbox
from supportwidget.staff import accounts
from supportwidget.staff.accounts import AccountError
from supportwidget.vocab import NotificationStatus, StaffRole

INVITE_VALID = timedelta(hours=72)
MIN_PASSWORD = 10
# Outbox rows still to go out: a disabled person's are failed instead.
UNSENT = (NotificationStatus.PENDING, NotificationStatus.SENDING)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="staff-invite")


def _fingerprint(member: Staff) -> str:
    # Changes once a password is set (or the person is signed out): the link works once.
    basis = f"{member.password_hash or ''}:{member.session_version}:{member.active}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def invite_link(member: Staff) -> str:
    """Return a set-password link for a member, valid for 72 hours and until used."""
    token = _serializer().dumps({"staff": member.id, "fp": _fingerprint(member)})
    return messages.public_url(f"/dashboard/invite/{token}")


def invite(
    name: str, email: str, phone: str | None = None, on_call: bool = False, admin: bool = False
) -> tuple[Staff, str]:
    """Add a staff member without a password and e-mail them a one-time set-password link."""
    name, email = accounts.staff_identity(name, email)
    member = Staff(
        name=name,
        email=email,
        phone=accounts.staff_phone(phone),
        on_call=on_call,
        role=StaffRole.ADMIN if admin else StaffRole.AGENT,
    )
    db.session.add(member)
    db.session.flush()
    link = invite_link(member)
    row = messages.notice(
        "staff_invite", email, "staff-invite", name=name, link=link, hours=72, role=member.role
    )
    row.staff_id = member.id
    db.session.commit()
    outbox.schedule([row])
    return member, link


def invited(token: str) -> Staff:
    """Return the person an invitation link is for; AccountError if it cannot be used."""
    serializer = _serializer()
    try:
        data = serializer.loads(token, max_age=int(INVITE_VALID.total_seconds()))
    except SignatureExpired as exc:
        raise AccountError(
            "This invitation has expired (after 72 hours): ask for a new one."
        ) from exc
    except BadSignature as exc:
        raise AccountError("This invitation link is not valid.") from exc
    member = db.session.get(Staff, data.get("staff") if isinstance(data, dict) else None)
    if member is None or data.get("fp") != _fingerprint(member):
        raise AccountError("This invitation was already used. Sign in, or ask for a new one.")
    if not member.active:
        raise AccountError("This account is disabled.")
    return member


def accept(token: str, password: str) -> Staff:
    """Set the invited person's password; the link stops working."""
    member = invited(token)
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"Choose a password of at least {MIN_PASSWORD} characters.")
    member.set_password(password)
    member.session_version += 1
    db.session.commit()
    return member


def set_active(member: Staff, active: bool) -> int:
    """Disable or enable a person; disabling signs them out and stops what is still queued.

    Sessions carry the session version and the API checks `active`, so both stop at once;
    e-mail, SMS and calls to them that are not out yet are failed, visibly, on their tickets.
    Returns how many queued notifications were stopped.
    """
    if member.active == active:
        raise AccountError(f"{member.email} is already {'enabled' if active else 'disabled'}.")
    member.active = active
    member.session_version += 1
    stopped = 0
    if not active:
        stopped = len(
            db.session.execute(
                sa.update(Notification)
                .where(Notification.staff_id == member.id, Notification.status.in_(UNSENT))
                .values(
                    status=NotificationStatus.FAILED,
                    last_error=f"{outbox.WITHDRAWN}{member.name} was disabled",
                    failure_reported_at=utcnow(),
                )
                .returning(Notification.id)
            ).all()
        )
    db.session.commit()
    return stopped
