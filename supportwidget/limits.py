"""Rate limits on public forms and sign-in (Flask-Limiter, storage from RATELIMIT_STORAGE_URI).

Limits protect the service; they must never take it down. When their counter store (Redis)
is unreachable they fail open: each process counts in memory until the store is back, the
failure is logged, and staff are told once an hour.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from . import identity, outbox
from .emergencies import report_flood
from .models import Site, db, utcnow

log = logging.getLogger(__name__)
limiter = Limiter(key_func=get_remote_address, swallow_errors=True, in_memory_fallback_enabled=True)
# Passed to the counter store (Redis); the memory store ignores them. Short: a store that
# does not answer must not hold up the emergency form.
STORAGE_TIMEOUTS = {"socket_timeout": 2, "socket_connect_timeout": 2}


def _public_form_limit() -> str:
    return current_app.config["PUBLIC_FORM_RATE_LIMIT"]


def _emergency_limit() -> str:
    return current_app.config["EMERGENCY_RATE_LIMIT"]


def _site_key() -> str:
    return (request.view_args or {}).get("site_key", "")


def _site_and_address() -> str:
    """Count per site and client address together: a stranger locks out only themselves."""
    return f"{_site_key()}/{get_remote_address()}"


def _filed(response: Response) -> bool:
    """Count only emergencies actually filed, not forms sent back with errors."""
    return response.status_code == 200


def _verified_identity() -> bool:
    """Tell whether the form carries the site's signed-in user, verified (never raises)."""
    try:
        meta = json.loads(request.form.get("page_meta") or "{}")
        site = Site.by_key(_site_key())
    except (ValueError, RecursionError, HTTPException):
        return False
    except SQLAlchemyError:
        db.session.rollback()  # the view meets the database failure itself, and says so
        return False
    return (
        isinstance(meta, dict) and site is not None and bool(identity.verified_identity(site, meta))
    )


def _flood(limit: RequestLimit) -> None:
    """Tell staff, once an hour per site, that an address hit the emergency limit."""
    report_flood(_site_key(), request.remote_addr or "unknown")


public_form = limiter.limit(_public_form_limit, methods=["POST"])
# The emergency form: the same per-address limit, but the site's own signed-in user (the CMS
# vouches for them) is never locked out of it.
emergency_public_form = limiter.limit(
    _public_form_limit, methods=["POST"], exempt_when=_verified_identity
)
# Emergencies page people at night: at most a few per site and client address.
emergency = limiter.limit(
    _emergency_limit,
    key_func=_site_and_address,
    methods=["POST"],
    deduct_when=_filed,
    on_breach=_flood,
    exempt_when=_verified_identity,
)


def failing_open() -> bool:
    """Tell whether limits are counted in memory because their store is unreachable."""
    return limiter.enabled and limiter.limiter.storage is not limiter.storage


def tell_staff_if_failing_open(response: Response) -> Response:
    """Log, and e-mail staff at most once an hour, while limits fail open."""
    if failing_open():
        hour = utcnow().strftime("%Y-%m-%dT%H")
        try:
            if outbox.tell_staff_once(f"limits-down:{hour}", "staff_limits_down", "limits-down"):
                log.error("rate limits are failing open: their store is unreachable")
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("could not tell staff that rate limits fail open")
    return response


def init_app(app: Flask) -> None:
    """Bind the limiter; a shared (Redis) counter store gets network timeouts."""
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", STORAGE_TIMEOUTS)
    limiter.init_app(app)
    app.after_request(tell_staff_if_failing_open)
