"""Cross-cutting pieces every package may use: database, errors, security headers, logs,
rate limits, languages, signed tokens, screenshots. They import only models and config."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app
from werkzeug.local import LocalProxy


def the_app() -> Flask:
    """Return the app itself, not the context-bound proxy (for threads and signal senders)."""
    # Flask types current_app as Flask, hiding that it is a LocalProxy.
    return cast("LocalProxy[Flask]", current_app)._get_current_object()
