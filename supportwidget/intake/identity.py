"""Signed identity: the CMS vouches for the signed-in user with an HMAC made from the site secret.

Format of `data-user-signature`: "<unix timestamp>.<hex HMAC-SHA256>", the HMAC taken with
the site secret over the lines: site key, lower-cased e-mail, name, timestamp. "Trimmed" and
"lower-cased" mean what PHP's trim() and ASCII case folding do, so PHP and Python agree on
every name (a trailing no-break space stays; 'É' stays 'É'). The WordPress plugin in examples/
makes it; tests share one vector file (examples/wordpress/tests/vectors.json) with its PHP test.
"""

from __future__ import annotations

import hashlib
import hmac
import string
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from supportwidget.models import Site, Ticket, db

MAX_AGE = 24 * 3600
CLOCK_SKEW = 300


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


# What PHP's trim() removes, and ASCII case folding (PHP's strtolower since 8.2).
PHP_TRIM = " \t\n\r\x00\x0b"
ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def signed_message(site_key: str, email: str, name: str, timestamp: int) -> bytes:
    """Return the exact bytes the HMAC covers."""
    email = email.strip(PHP_TRIM).translate(ASCII_LOWER)
    return "\n".join([site_key, email, name.strip(PHP_TRIM), str(timestamp)]).encode()


def sign(secret: str, site_key: str, email: str, name: str, timestamp: int) -> str:
    """Return a signature in the widget's format (what the CMS plugin computes)."""
    digest = hmac.new(
        secret.encode(), signed_message(site_key, email, name, timestamp), hashlib.sha256
    )
    return f"{timestamp}.{digest.hexdigest()}"


def verify(site: Site, email: str, name: str, signature: str, now: float | None = None) -> bool:
    """Tell whether a signature vouches for this e-mail and name on this site, and is fresh."""
    stamp, _, given = (signature or "").partition(".")
    # A Unix time in seconds: ASCII digits, a dozen at most ('²' and 400-digit stamps too).
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or len(given) != 64:
        return False
    age = (time.time() if now is None else now) - int(stamp)
    if age > MAX_AGE or age < -CLOCK_SKEW:
        return False
    expected = sign(site.secret, site.site_key, email, name, int(stamp)).partition(".")[2]
    return hmac.compare_digest(expected, given.lower())


def recent_requests(site: Site, email: str, limit: int = 10) -> list[Ticket]:
    """Return a signed-in person's latest requests on one site, newest first."""
    query = (
        sa.select(Ticket)
        .where(Ticket.site_id == site.id, sa.func.lower(Ticket.requester_email) == email)
        .order_by(Ticket.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def verified_identity(site: Site, page_meta: dict[str, Any]) -> Identity | None:
    """Return the user the widget's signed data vouches for, or None."""
    user = page_meta.get("user")
    if not isinstance(user, dict):
        return None
    name, email, signature = (str(user.get(k) or "") for k in ("name", "email", "signature"))
    if name and email and verify(site, email, name, signature):
        return Identity(name=name.strip(), email=email.strip().lower())
    return None
