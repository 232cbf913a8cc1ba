"""Rate limits on public forms (Flask-Limiter, storage from RATELIMIT_STORAGE_URI)."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address)


def _public_form_limit() -> str:
    return current_app.config["PUBLIC_FORM_RATE_LIMIT"]


def _emergency_limit() -> str:
    return current_app.config["EMERGENCY_RATE_LIMIT"]


def _site_key() -> str:
    return (request.view_args or {}).get("site_key", "")


def _filed(response: Response) -> bool:
    """Count only emergencies actually filed, not forms sent back with errors."""
    return response.status_code == 200


def _flood(limit: RequestLimit) -> None:
    """Tell staff, once an hour per site, that someone hit the emergency limit."""
    from supportwidget.emergencies.paging import report_flood

    report_flood(_site_key(), request.remote_addr or "unknown")


public_form = limiter.limit(_public_form_limit, methods=["POST"])
# Emergencies page people at night: at most a few per site and per client IP.
emergency_per_site = limiter.shared_limit(
    _emergency_limit,
    scope="emergency-site",
    key_func=_site_key,
    methods=["POST"],
    deduct_when=_filed,
    on_breach=_flood,
)
emergency_per_ip = limiter.limit(
    _emergency_limit, methods=["POST"], deduct_when=_filed, on_breach=_flood
)


def init_app(app: Flask) -> None:
    """Bind the limiter (its storage options give a Redis counter store network timeouts)."""
    limiter.init_app(app)
