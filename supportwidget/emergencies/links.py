"""One-time acknowledge links (/a/<code>) in pages and staff e-mail: short, signed, expiring."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime

from flask import current_app

from supportwidget.models import Staff, Ticket, db, parse_id, utcnow
from supportwidget.notify import messages


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
    if ticket is None or member is None or not member.active:  # a leaver's links die with them
        return None
    age = (now or utcnow()).timestamp() - int(stamp, 16)
    if age > float(current_app.config["ACK_LINK_MAX_AGE"]):
        raise AckLinkExpired(ticket)
    return ticket, member


def ack_url(ticket: Ticket, member: Staff) -> str:
    """Return a staff member's acknowledgement link for a ticket."""
    return messages.public_url(f"/a/{ack_code(ticket.id, member.id)}")
