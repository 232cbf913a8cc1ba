"""Vonage's Voice API: starting a call through its SDK, the NCCO a call follows, and the
signed JWT Vonage puts on every voice callback (answer, event, input).

A call is started with an answer URL rather than a fixed NCCO: what the person hears is
decided when they pick up, so a call answered after someone else acknowledged says so.
Outcomes of starting a call are classified like an SMS send (`vonage.py`): no transport
retries, and an unknown outcome is never retried, so nobody is phoned twice for one row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
import vonage
from flask import abort, current_app, request
from pydantic import ValidationError
from vonage_http_client import Auth
from vonage_http_client.errors import HttpRequestError
from vonage_utils.errors import VonageError
from vonage_voice.models import CreateCallRequest, Dtmf, Input, Talk, ToPhone

from supportwidget.notify.channels import vonage as vonage_sms
from supportwidget.notify.channels.base import SmsResult

log = logging.getLogger(__name__)
DEFAULT_API_HOST = "api.nexmo.com"
MAX_AGE = 300  # seconds a callback's signature stays valid
RINGING_SECONDS = 45  # then Vonage gives up: "timeout" (no answer)
LONGEST_CALL_SECONDS = 180
VOICE = "en-GB"  # on-call staff hear English, as they read it


@dataclass
class CallAccount:
    """What calling through Vonage needs: the application, its key, the host, a timeout."""

    application_id: str
    private_key: str  # the PEM
    api_host: str
    timeout: int


def read_private_key(value: str) -> str:
    """Return the PEM of VONAGE_PRIVATE_KEY, which holds the PEM itself or a path to it."""
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")  # a PEM in an environment variable, on one line
    return Path(value).expanduser().read_text()


def _client(account: CallAccount) -> vonage.Vonage:
    """Build an SDK client that makes exactly one attempt, signing with the application key."""
    options = vonage_sms.one_attempt(account.timeout, api_host=account.api_host)
    auth = Auth(application_id=account.application_id, private_key=account.private_key)
    return vonage.Vonage(auth, options)


def place_call(account: CallAccount, to: str, answer_url: str, event_url: str) -> SmsResult:
    """Ask Vonage once to phone a number; the call's uuid is its id."""
    try:
        request = CreateCallRequest(
            to=[ToPhone(number=to.lstrip("+"))],
            random_from_number=True,  # a number of the application: no sender to configure
            answer_url=[answer_url],
            answer_method="POST",
            event_url=[event_url],
            event_method="POST",
            ringing_timer=RINGING_SECONDS,
            length_timer=LONGEST_CALL_SECONDS,
            machine_detection="hangup",  # a voicemail cannot press 1
        )
        client = _client(account)
    except (ValidationError, VonageError, ValueError) as exc:
        return SmsResult("failed", None, f"not called, invalid call or credentials: {exc}")
    try:
        return SmsResult("sent", client.voice.create_call(request).uuid, None)
    except HttpRequestError as exc:
        return vonage_sms.classify_http(exc.response)
    except requests.RequestException as exc:
        return vonage_sms.classify_transport(exc)
    except (KeyError, TypeError, ValueError) as exc:
        return SmsResult("failed", None, f"unreadable answer from Vonage ({exc!r}), not retried")
    finally:
        client.http_client._session.close()  # the SDK has no public close


def ncco(say: str, input_url: str | None) -> list[dict[str, Any]]:
    """Return the NCCO that speaks `say` and, given an input URL, waits for one key press."""
    if input_url is None:
        return [Talk(text=say, language=VOICE).model_dump(by_alias=True, exclude_none=True)]
    actions = [
        # Said twice; a key press cuts it short and goes to the input.
        Talk(text=say, language=VOICE, loop=2, bargeIn=True),
        Input(
            type=["dtmf"],
            dtmf=Dtmf(maxDigits=1, timeOut=10),
            eventUrl=[input_url],
            eventMethod="POST",
        ),
    ]
    return [action.model_dump(by_alias=True, exclude_none=True) for action in actions]


class CallbackRefused(Exception):
    """A voice callback without a valid, fresh signature for its body."""


def verify_jwt(
    authorization: str | None,
    body: bytes,
    secret: str,
    application_id: str | None = None,
    *,
    max_age: float = MAX_AGE,
    now: float | None = None,
) -> dict[str, Any]:
    """Return the claims of a callback's signed JWT; raise CallbackRefused if it is not valid.

    Vonage signs with HS256 and the account's signature secret; `iat` says when, and
    `payload_hash` is the SHA-256 of the body, so a signature cannot carry another body.
    """
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CallbackRefused("The callback is not signed.")
    try:
        claims = jwt.decode(
            token.strip(), secret, algorithms=["HS256"], options={"require": ["iat"]}
        )
    except jwt.InvalidTokenError as exc:
        raise CallbackRefused(f"Invalid signature ({exc}).") from exc
    signed_at = claims.get("iat")
    if not isinstance(signed_at, int | float):
        raise CallbackRefused("The signature has no valid time.")
    if abs((time.time() if now is None else now) - signed_at) > max_age:
        raise CallbackRefused("The signature is stale.")
    expected = hashlib.sha256(body).hexdigest()
    given = claims.get("payload_hash")
    if not isinstance(given, str) or not hmac.compare_digest(given.lower(), expected):
        raise CallbackRefused("The signature does not cover this body.")
    if application_id and claims.get("application_id") not in (None, application_id):
        raise CallbackRefused("The callback is for another Vonage application.")
    return claims


@dataclass(frozen=True)
class VoiceCallback:
    """A voice callback Vonage signed: its JSON body, and an id of the signature."""

    body: dict[str, Any]
    signature_id: str  # the JWT's jti: the same signed callback twice is a replay

    @property
    def uuid(self) -> str:
        """Return the call's uuid (Vonage's id of the call leg)."""
        return str(self.body.get("uuid") or "")

    @property
    def status(self) -> str:
        """Return the call status an event callback reports (answered, busy, timeout …)."""
        return str(self.body.get("status") or "").lower()

    @property
    def digits(self) -> str:
        """Return the keys pressed, as an input callback reports them."""
        dtmf = self.body.get("dtmf")
        return str((dtmf.get("digits") if isinstance(dtmf, dict) else dtmf) or "")


def signed_callback() -> VoiceCallback:
    """Return the voice callback of this request if Vonage signed it, recently, for this body;
    else abort 403 (unsigned, forged, stale) or 400 (not a JSON object)."""
    config = current_app.config
    secret = config["VONAGE_SIGNATURE_SECRET"]
    if not secret:
        log.error("VONAGE_SIGNATURE_SECRET is not set: refusing an unsigned voice callback")
        abort(403, "Webhook signatures are not configured on this service.")
    body = request.get_data(cache=True)
    header = request.headers.get("Authorization")
    try:
        claims = verify_jwt(header, body, str(secret), config["VONAGE_APPLICATION_ID"])
    except CallbackRefused as exc:
        abort(403, str(exc))
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        abort(400, "A voice callback's body must be a JSON object.")
    token_digest = hashlib.sha256((header or "").encode()).hexdigest()
    return VoiceCallback(data, str(claims.get("jti") or token_digest))
