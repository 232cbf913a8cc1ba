"""The voice channel: phone calls to on-call staff through Vonage's Voice API, or JSON lines in
instance/calls.jsonl when no application is configured. What a call says is decided when it
is answered (the voice webhooks); `vonage_calls.py` speaks to Vonage."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, current_app

from supportwidget.config import use_defaults
from supportwidget.models import Notification
from supportwidget.notify import messages
from supportwidget.notify.channels import base, vonage_calls
from supportwidget.notify.channels.base import SmsResult
from supportwidget.vocab import NotificationChannel

CALLBACKS = "/webhooks/vonage/voice/"


@dataclass
class _State:
    """The Vonage application to call through, or the file written instead, or what is wrong."""

    account: vonage_calls.CallAccount | None
    sink: str | None
    problem: str | None = None


def _setting(app: Flask, key: str) -> str:
    value = app.config[key]
    return "" if value is None else str(value).strip()


class Voice:
    """Flask extension placing calls through Vonage; bind with `init_app`."""

    def init_app(self, app: Flask) -> None:
        """Read the Voice API settings of `app` and register the extension."""
        use_defaults(app.config, "VONAGE_", "SMS_")
        application_id = _setting(app, "VONAGE_APPLICATION_ID")
        key = _setting(app, "VONAGE_PRIVATE_KEY")
        if not (application_id and key):
            sink = os.path.join(app.instance_path, "calls.jsonl")
            app.logger.warning(
                "NO PHONE CALL WILL BE MADE: VONAGE_APPLICATION_ID/VONAGE_PRIVATE_KEY are not "
                "set, every call to on-call staff is written to %s instead",
                sink,
            )
            app.extensions["voice"] = _State(None, sink)
            return
        try:
            pem = vonage_calls.read_private_key(key)
        except OSError as exc:
            problem = f"VONAGE_PRIVATE_KEY cannot be read ({exc}): no call can be made"
            app.logger.error("%s", problem)
            app.extensions["voice"] = _State(None, None, problem)
            return
        account = vonage_calls.CallAccount(
            application_id=application_id,
            private_key=pem,
            api_host=_setting(app, "VONAGE_API_HOST") or vonage_calls.DEFAULT_API_HOST,
            timeout=max(1, math.ceil(float(app.config["SMS_TIMEOUT"]))),
        )
        app.extensions["voice"] = _State(account, None)

    def call(self, row: Notification) -> SmsResult:
        """Phone the row's recipient once; its callbacks name the row."""
        state: _State = current_app.extensions["voice"]
        answer_url, event_url = (callback_url(kind, row.id) for kind in ("answer", "event"))
        if state.sink is not None:
            record = {
                "to": row.recipient,
                "text": row.body_text,
                "answer_url": answer_url,
                "event_url": event_url,
                "client_ref": str(row.id),
                "at": datetime.now(UTC).isoformat(),
            }
            return SmsResult("sent", f"file-{base.append_json_line(state.sink, record)}", None)
        if state.account is None:
            return SmsResult("failed", None, state.problem)
        return vonage_calls.place_call(state.account, row.recipient, answer_url, event_url)


voice = Voice()


def callback_url(kind: str, notification_id: int) -> str:
    """Return the absolute URL of a voice callback (answer, event, input) for one call row."""
    return messages.public_url(f"{CALLBACKS}{kind}?call={notification_id}")


class VoiceChannel:
    """Calls to on-call staff: a lane of their own, so they never wait behind e-mail."""

    name: str = NotificationChannel.VOICE
    lane = "voice"
    batch = 1
    threads = 4
    poll = (0.1, 1.0)

    def send(self, rows: Sequence[Notification], until: float) -> list[base.Outcome]:
        """Place each row's call once, until the deadline."""
        return base.send_each(rows, until, _call_row)

    def health(self) -> str:
        """Say whether calls go to Vonage, to the JSON-lines file, or cannot be made."""
        state: _State = current_app.extensions["voice"]
        if state.sink is not None:
            return "file"
        return "vonage" if state.account is not None else "error: private key unreadable"


def _call_row(row: Notification) -> base.Outcome:
    """Place one outbox row's call; keep Vonage's call uuid as the provider id."""
    return base.outcome_of(voice.call(row))
