"""Every configuration key, its default and what it does: the one place defaults live.

Set any of them in `instance/config.py`, or as an environment variable prefixed
`SUPPORTWIDGET_` (parsed as JSON where it parses: `true`, `25`, `["a@b.c"]`).
A key whose default is None and says "instance folder" is filled in by `finish`.
The README's configuration tables list exactly these keys (a test checks).
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from supportwidget import vocab

log = logging.getLogger(__name__)
MiB = 1024 * 1024

# --- the service ---------------------------------------------------------------------------
#: Signs sessions, form tokens and links; None: generated once into instance/secret_key.
SECRET_KEY: str | None = None
#: The address people reach the service at: links in e-mail and SMS, the embed snippet.
PUBLIC_URL = "http://127.0.0.1:5000"
#: Trusted reverse proxies in front of the service, for X-Forwarded-* (0: trust none).
PROXY_COUNT = 0
#: "text", or "json" for one JSON object per log line (each with its request id).
LOG_FORMAT = "text"
#: Python logging level name.
LOG_LEVEL = "INFO"

# --- storage -------------------------------------------------------------------------------
#: The database; None: SQLite in the instance folder.
SQLALCHEMY_DATABASE_URI: str | None = None
#: Extra SQLAlchemy engine options, over ours (pre-ping; PostgreSQL connect/statement timeouts).
SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}
#: PostgreSQL statement timeout in milliseconds: no request waits forever behind a lock.
DATABASE_STATEMENT_TIMEOUT_MS = 30_000
#: The worker's jobs storage: sqlite:///…, redis://…, postgresql://…; None: instance folder.
QUEUE_URL: str | None = None
#: Run jobs at once in the calling process instead of queueing them (tests).
QUEUE_IMMEDIATE = False
#: Where screenshots are stored by content hash; None: instance/uploads.
UPLOAD_FOLDER: str | None = None

# --- e-mail --------------------------------------------------------------------------------
#: SMTP relay; None: every e-mail is written to instance/mail/*.eml instead.
MAIL_SERVER: str | None = None
#: SMTP port; None: 465 with MAIL_USE_SSL, else 25.
MAIL_PORT: int | None = None
#: STARTTLS on a plain connection (port 587).
MAIL_USE_TLS = False
#: TLS from the first byte (port 465).
MAIL_USE_SSL = False
#: SMTP login, with MAIL_PASSWORD.
MAIL_USERNAME: str | None = None
#: SMTP password.
MAIL_PASSWORD: str | None = None
#: The From of every e-mail; point this mailbox at `mail-in` so replies thread.
MAIL_DEFAULT_SENDER = "supportwidget <support@localhost>"
#: Seconds for each SMTP step (connect, TLS, each reply).
MAIL_TIMEOUT = 10
#: CA bundle for a private SMTP relay (TLS is always verified).
MAIL_CA_FILE: str | None = None
#: Print the SMTP conversation; None: when Flask runs in debug mode.
MAIL_DEBUG: bool | None = None
#: Write nothing and send nothing (Flask-Mail's switch).
MAIL_SUPPRESS_SEND = False
#: Most messages per SMTP connection (Flask-Mail); None: no limit.
MAIL_MAX_EMAILS: int | None = None
#: Transliterate attachment file names to ASCII (Flask-Mail).
MAIL_ASCII_ATTACHMENTS = False
#: Addresses that get every staff e-mail besides the staff members themselves.
STAFF_NOTIFY_EMAILS: list[str] = []

# --- the agency ----------------------------------------------------------------------------
#: Signs e-mails.
AGENCY_NAME = "Your web agency"
#: Direct contact shown on 429 and 503 pages and in e-mails.
AGENCY_EMAIL: str | None = None
#: Direct phone shown on 429 and 503 pages and in e-mails.
AGENCY_PHONE: str | None = None

# --- SMS (Vonage) --------------------------------------------------------------------------
#: Vonage API key; without key and secret every SMS is written to instance/sms.jsonl.
VONAGE_API_KEY: str | None = None
#: Vonage API secret.
VONAGE_API_SECRET: str | None = None
#: Signature secret of Vonage webhooks; unset: webhooks are refused (403).
VONAGE_SIGNATURE_SECRET: str | None = None
#: md5hash (Vonage's default), md5, sha1, sha256 or sha512.
VONAGE_SIGNATURE_METHOD = "md5hash"
#: Another SMS API host (a local stand-in in tests); None: Vonage's.
VONAGE_REST_HOST: str | None = None
#: The sender name or number of pages.
SMS_FROM = "supportdesk"
#: Seconds for one request to Vonage (sending an SMS, or starting a call).
SMS_TIMEOUT = 10
#: Vonage Voice API application id; without it and the key calls go to instance/calls.jsonl.
VONAGE_APPLICATION_ID: str | None = None
#: The Voice application's private key: a path to the PEM file, or the PEM itself.
VONAGE_PRIVATE_KEY: str | None = None
#: Another Voice API host (a local stand-in in tests); None: Vonage's.
VONAGE_API_HOST: str | None = None

# --- emergencies ---------------------------------------------------------------------------
#: Seconds between pages of an unacknowledged emergency.
EMERGENCY_REPAGE_INTERVAL = 300
#: Re-pages before everyone with a phone is paged and admins are e-mailed.
EMERGENCY_REPAGE_LIMIT = 6
#: Seconds an acknowledge link (/a/<code>) in a page or e-mail works; later it answers 410.
ACK_LINK_MAX_AGE = 7 * 24 * 3600
#: Unacknowledged SMS rounds after which the staff paged are also phoned (0: at once).
EMERGENCY_CALL_AFTER = 2
#: Seconds our check of an offline site's URL may take before the emergency is filed anyway.
EMERGENCY_CHECK_TIMEOUT = 3
#: Let site checks reach loopback and private addresses (tests, intranet sites).
WATCH_ALLOW_PRIVATE = False
#: Run the uptime watch (inside `serve`, and as `watch` processes).
WATCH_ENABLED = True
#: Seconds between checks of a site (a site's own interval overrides it).
WATCH_INTERVAL = 60
#: Seconds one check of a site may take.
WATCH_TIMEOUT = 10
#: Failed checks in a row (then one confirming check) that open an emergency.
WATCH_FAILURES = 3
#: ISO 4217 code of hourly rates and billing.
CURRENCY = "EUR"

# --- intake --------------------------------------------------------------------------------
#: Largest screenshot accepted, in bytes.
MAX_SCREENSHOT_BYTES = 10 * MiB
#: Bigger requests get 413 before they are read (`serve` does not read them either).
MAX_CONTENT_LENGTH = 64 * MiB
#: Pixels of all the screenshots of one request, read from image headers before decoding.
MAX_PIXELS_PER_REQUEST = 60_000_000
#: Seconds a hosted form stays valid.
FORM_TOKEN_MAX_AGE = 24 * 3600
#: Days a rotated site key keeps working.
SITE_KEY_GRACE_DAYS = 14
#: authserv-id of our own MTA's Authentication-Results; set, mail-in trusts only senders it
#: authenticated (DMARC, or aligned DKIM/SPF) and holds the rest for staff.
MAILIN_AUTHSERV_ID: str | None = None

# --- rate limits (Flask-Limiter) -----------------------------------------------------------
#: Switch every rate limit on or off.
RATELIMIT_ENABLED = True
#: Counter storage: memory:// (one process) or redis://… (shared).
RATELIMIT_STORAGE_URI = "memory://"
#: Options for the counter storage: short Redis timeouts, so a dead store holds no form up.
RATELIMIT_STORAGE_OPTIONS = {"socket_timeout": 2, "socket_connect_timeout": 2}
#: Submissions of a hosted form, per client IP.
PUBLIC_FORM_RATE_LIMIT = "20 per hour"
#: Filed emergencies, per site and per client IP.
EMERGENCY_RATE_LIMIT = "3 per hour"
#: Sign-in attempts per client IP.
LOGIN_RATE_LIMIT = "10 per minute"

# --- staff ---------------------------------------------------------------------------------
#: How staff passwords are hashed (a werkzeug generate_password_hash method); tests: cheap.
PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a method name, not a password
#: Seconds a dashboard form's CSRF token stays valid.
WTF_CSRF_TIME_LIMIT = 12 * 3600
#: Minutes before a due time at which the queue marks a ticket "at risk".
DASHBOARD_AT_RISK_MINUTES = 60

# --- SLA and business time -----------------------------------------------------------------
#: The agency's timezone (clients without an SLA, billing months).
DEFAULT_TIMEZONE = "UTC"
#: The agency's business hours.
DEFAULT_HOURS = vocab.BUSINESS_WEEK
#: The agency's public holidays: a country (and subdivision) code such as GB or US-CA.
DEFAULT_HOLIDAYS: str | None = None
#: Extra closed dates of the agency (ISO dates).
DEFAULT_EXTRA_HOLIDAYS: list[str] = []
#: Business-time target for clients without an SLA, to interleave them in the queue.
DEFAULT_TARGET = "16h"
#: Warn staff this much business time before an SLA target.
PRE_BREACH_WARNING = "1h"

# --- the worker ----------------------------------------------------------------------------
#: Seconds between worker heartbeats and periodic jobs (re-drive, re-page, digest, breaches).
SCHEDULER_SECONDS = 15
#: Hours an e-mail's passing failures are retried after it is queued or resent (15-min cap).
OUTBOX_RETRY_HOURS = 72
#: Seconds after which a notification left "sending" counts as abandoned.
OUTBOX_LEASE_SECONDS = 120


def defaults() -> dict[str, Any]:
    """Return every key of this module with a fresh copy of its default."""
    return {key: copy.deepcopy(value) for key, value in globals().items() if key.isupper()}


def use_defaults(config: MutableMapping[str, Any], *prefixes: str) -> None:
    """Give the keys with these prefixes that an app left unset their default.

    For an extension bound to any Flask app, not only to one made by create_app.
    """
    for key, value in defaults().items():
        if key.startswith(prefixes):
            config.setdefault(key, value)


def finish(config: MutableMapping[str, Any], instance_path: str) -> None:
    """Point the keys left unset at the instance folder (the embedded defaults)."""
    folder = Path(instance_path)
    config["SQLALCHEMY_DATABASE_URI"] = (
        config["SQLALCHEMY_DATABASE_URI"] or f"sqlite:///{folder / 'supportwidget.sqlite'}"
    )
    config["QUEUE_URL"] = config["QUEUE_URL"] or f"sqlite:///{folder / 'queue.sqlite'}"
    config["UPLOAD_FOLDER"] = config["UPLOAD_FOLDER"] or str(folder / "uploads")
    config["SECRET_KEY"] = config["SECRET_KEY"] or _secret_key(folder)


def _secret_key(folder: Path) -> str:
    """Return a persistent secret key for a machine that configured none."""
    path = folder / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
        log.warning("No SECRET_KEY configured: generated one in %s", path)
    return path.read_text().strip()
