"""Rate limits (Flask-Limiter, storage from RATELIMIT_STORAGE_URI): the limiter, public forms.

Limits protect the service; they must never take it down. When their counter store (Redis)
is unreachable they fail open: each process counts in memory until the store is back.
`failing_open` tells whoever may warn staff (intake's views, after each request) that it is so.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, swallow_errors=True, in_memory_fallback_enabled=True)


def public_form_limit() -> str:
    """Return the hosted forms' limit per client address."""
    return current_app.config["PUBLIC_FORM_RATE_LIMIT"]


public_form = limiter.limit(public_form_limit, methods=["POST"])


def failing_open() -> bool:
    """Tell whether limits are counted in memory because their store is unreachable."""
    return limiter.enabled and limiter.limiter.storage is not limiter.storage


def init_app(app: Flask) -> None:
    """Bind the limiter (its storage options give a Redis counter store network timeouts)."""
    limiter.init_app(app)
