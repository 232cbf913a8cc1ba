"""The SMS channel: pages through an SMS provider (Vonage), or into a JSON-lines file when no
credentials are set. What Vonage's answers mean is in `vonage.py`."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from blinker import Namespace
from flask import Flask, current_app

from supportwidget.config import use_defaults
from supportwidget.models import Notification
from supportwidget.notify.channels import base, vonage
from supportwidget.notify.channels.base import SmsResult
from supportwidget.notify.gsm import is_gsm
from supportwidget.platform import the_app
from supportwidget.vocab import NotificationChannel

_signals = Namespace()
#: Sent with the app as sender on every attempt that reached Vonage or the file sink.
sms_sent = _signals.signal("sms-sent")


@dataclass
class _State(vonage.Account):
    """Vonage's settings, and the file written instead when there are no credentials."""

    sink: str | None = None


def _config_str(app: Flask, key: str, default: str = "") -> str:
    """Read a config value as text (env values like 447700900000 parse as numbers)."""
    value = app.config.get(key)
    return default if value is None else str(value).strip()


class Sms:
    """Flask extension sending SMS through Vonage; bind with `init_app`."""

    def init_app(self, app: Flask) -> None:
        """Read the Vonage settings of `app` and register the extension."""
        use_defaults(app.config, "VONAGE_", "SMS_", "RATELIMIT_")
        api_key = _config_str(app, "VONAGE_API_KEY")
        api_secret = _config_str(app, "VONAGE_API_SECRET")
        sender = _config_str(app, "SMS_FROM")
        sink = None
        if not (api_key and api_secret):
            sink = os.path.join(app.instance_path, "sms.jsonl")
            app.logger.warning(
                "NO SMS WILL BE SENT: VONAGE_API_KEY/VONAGE_API_SECRET are not set, "
                "every SMS is written to %s instead",
                sink,
            )
        elif not sender:
            app.logger.warning("SMS_FROM is not set: every SMS will fail until it is")
        # The SDK takes whole seconds; never 0, which would mean "do not wait at all".
        timeout = max(1, math.ceil(float(app.config["SMS_TIMEOUT"])))
        app.extensions["sms"] = _State(
            api_key=api_key,
            api_secret=api_secret,
            rest_host=_config_str(app, "VONAGE_REST_HOST") or vonage.DEFAULT_REST_HOST,
            sender=sender,
            timeout=timeout,
            sink=sink,
            limiter=vonage.limiter_for(api_key, _config_str(app, "RATELIMIT_STORAGE_URI")),
        )

    def send(self, to: str, text: str, client_ref: str) -> SmsResult:
        """Send one SMS and say whether it was sent, may be retried, or failed."""
        app = the_app()
        state: _State = app.extensions["sms"]
        if state.sink is not None:
            result = _write_to_file(state.sink, state.sender, to, text, client_ref)
        else:
            try:
                message = vonage.message(state, to, text, client_ref, unicode=not is_gsm(text))
            except vonage.InvalidSms as exc:
                return SmsResult("failed", None, f"not sent, invalid SMS: {exc}")
            result = vonage.send(state, message)
        sms_sent.send(app, to=to, text=text, client_ref=client_ref, result=result)
        return result


sms = Sms()


def _write_to_file(path: str, sender: str, to: str, text: str, client_ref: str) -> SmsResult:
    """Append the SMS as one JSON line; its line number makes the message id."""
    record = {
        "to": to,
        "from": sender,
        "text": text,
        "client_ref": client_ref,
        "at": datetime.now(UTC).isoformat(),
    }
    return SmsResult("sent", f"file-{base.append_json_line(path, record)}", None)


class SmsChannel:
    """SMS pages through Vonage (or a JSON-lines file): one row per job, many threads."""

    name: str = NotificationChannel.SMS
    lane = "sms"
    batch = 1
    threads = 8
    poll = (0.05, 0.5)

    def send(self, rows: Sequence[Notification], until: float) -> list[base.Outcome]:
        """Send each row's SMS once, until the deadline."""
        return base.send_each(rows, until, _send_row)

    def health(self) -> str:
        """Say whether SMS go to Vonage or to the JSON-lines file."""
        state: _State = current_app.extensions["sms"]
        return "file" if state.sink is not None else "vonage"


def _send_row(row: Notification) -> base.Outcome:
    """Send one outbox row's SMS; keep Vonage's message id as the provider id."""
    return base.outcome_of(sms.send(row.recipient, row.body_text, client_ref=str(row.id)))
