"""Rate limits (Flask-Limiter, storage from RATELIMIT_STORAGE_URI): the limiter, public forms."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address)


def _public_form_limit() -> str:
    return current_app.config["PUBLIC_FORM_RATE_LIMIT"]


public_form = limiter.limit(_public_form_limit, methods=["POST"])


def init_app(app: Flask) -> None:
    """Bind the limiter (its storage options give a Redis counter store network timeouts)."""
    limiter.init_app(app)
