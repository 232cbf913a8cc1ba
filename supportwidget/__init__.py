"""supportwidget: the support desk web agencies want."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

log = logging.getLogger("supportwidget")


def _secret_key(instance_path: str) -> str:
    """Return a persistent secret key for a machine that configured none."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
        log.warning("No SECRET_KEY configured: generated one in %s", path)
    return path.read_text().strip()


def _defaults(instance_path: str) -> dict[str, Any]:
    """Return the embedded defaults: everything in the instance folder."""
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(instance_path) / 'supportwidget.sqlite'}",
        "QUEUE_URL": f"sqlite:///{Path(instance_path) / 'queue.sqlite'}",
        "UPLOAD_FOLDER": str(Path(instance_path) / "uploads"),
        "PUBLIC_URL": "http://127.0.0.1:5000",
        "MAIL_SERVER": None,
        "MAIL_PORT": 25,
        "MAIL_USE_TLS": False,
        "MAIL_USE_SSL": False,
        "MAIL_DEFAULT_SENDER": "supportwidget <support@localhost>",
        "MAIL_TIMEOUT": 10,
        "STAFF_NOTIFY_EMAILS": [],
        "AGENCY_NAME": "Your web agency",
        "AGENCY_EMAIL": None,
        "AGENCY_PHONE": None,
        "VONAGE_API_KEY": None,
        "VONAGE_API_SECRET": None,
        "VONAGE_SIGNATURE_SECRET": None,
        "VONAGE_SIGNATURE_METHOD": "md5hash",
        "VONAGE_REST_HOST": None,
        "SMS_FROM": "supportdesk",
        "EMERGENCY_REPAGE_INTERVAL": 300,
        "EMERGENCY_REPAGE_LIMIT": 6,
        "MAX_SCREENSHOT_BYTES": 10 * 1024 * 1024,
        "FORM_TOKEN_MAX_AGE": 24 * 3600,
        "OUTBOX_RETRY_HOURS": 72,
        "ACK_LINK_MAX_AGE": 7 * 24 * 3600,
        "OUTBOX_LEASE_SECONDS": 120,
        "RATELIMIT_STORAGE_URI": "memory://",
        "PUBLIC_FORM_RATE_LIMIT": "20 per hour",
        "EMERGENCY_RATE_LIMIT": "3 per hour",
        "DEFAULT_TIMEZONE": "UTC",
        "DEFAULT_HOURS": "mon-fri 09:00-17:30",
        "DEFAULT_HOLIDAYS": None,
        "DEFAULT_TARGET": "16h",
        "PRE_BREACH_WARNING": "1h",
        "SCHEDULER_SECONDS": 15,
        "LOG_FORMAT": "text",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the supportwidget application."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "SUPPORTWIDGET_INSTANCE_PATH"
    )
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(_defaults(app.instance_path))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("SUPPORTWIDGET")
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app.instance_path)
    # Uploads are checked file by file; this only stops absurd bodies early.
    app.config.setdefault("MAX_CONTENT_LENGTH", 6 * app.config["MAX_SCREENSHOT_BYTES"] + 2**20)
    os.makedirs(app.config["UPLOAD_FOLDER"], exist_ok=True)

    _bind(app)
    return app


def _bind(app: Flask) -> None:
    """Bind every extension and register every blueprint and command."""
    from . import (
        api,
        cli,
        dashboard,
        database,
        demo,
        errors,
        health,
        hosted,
        i18n,
        limits,
        logs,
        mail,
        models,
        security,
        sms,
        webhooks,
        worker,
    )

    # <id:…> in a URL: a row id, so a number too big for a BIGINT is a 404, not a 500.
    app.url_map.converters["id"] = models.IdConverter
    database.init_app(app)
    mail.mail.init_app(app)
    sms.sms.init_app(app)
    worker.init_app(app)
    limits.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    logs.init_app(app)
    cli.init_app(app)
    app.register_blueprint(hosted.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(demo.bp)
    app.register_blueprint(webhooks.bp)
    api.init_app(app)
    dashboard.init_app(app)
