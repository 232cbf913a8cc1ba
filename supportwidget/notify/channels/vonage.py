"""Everything Vonage: sending an SMS through its SDK, its webhook signatures, and reading
inbound messages and delivery receipts. Another SMS provider would be one module like this.

Outcomes of one `send` (the outbox decides what to do with each):

* ``sent``: Vonage answered status "0"; the message id is kept.
* ``retry``: Vonage certainly did not take the message: throttled (status 1),
  internal error (status 5), HTTP 429/5xx other than 504, connection refused or
  connect timeout. Sending again cannot page anyone twice.
* ``failed``: Vonage rejected the message (bad number, quota, credentials …), or
  the outcome is unknown (read timeout, connection dropped after the request
  went out, HTTP 504, a mangled answer). Unknown outcomes are never retried:
  Vonage does not de-duplicate on client-ref, so a resend could page twice;
  a visibly failed row is what staff see instead, and re-paging continues
  until someone acknowledges.

HTTP 500/502/503 count as ``retry``: they come from Vonage's front end before
the message got a message-id, and for an emergency page a rare duplicate is
the lesser harm than a page that is never sent. HTTP 504 alone means "the back
end may still be working on it", which is the same unknown as a read timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import vonage
from flask import abort, current_app, request
from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from pydantic import ValidationError
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
from vonage_http_client import Auth, HttpClientOptions
from vonage_http_client.errors import HttpRequestError
from vonage_sms import SmsError, SmsMessage

from supportwidget.notify.channels.base import SmsResult

log = logging.getLogger(__name__)

UNKNOWN = "outcome unknown, not retried so nobody is paged twice"
DEFAULT_REST_HOST = "rest.nexmo.com"
RATE_PER_SECOND = 30  # Vonage's default SMS API throughput per API key
# Statuses where Vonage says it did not accept the message and a resend is safe.
RETRY_STATUSES = frozenset({"1", "5"})


class _RateLimiter:
    """Space request starts evenly so all threads together stay under a rate."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        """Block until this caller may start its request."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        # Sleep outside the lock: each caller already holds its own slot.
        time.sleep(max(0.0, slot - now))


class _SharedRateLimiter(_RateLimiter):
    """Also respect the rate across processes, through the rate-limit storage (e.g. Redis).

    Each worker process spaces its own requests evenly; several processes on one key
    would still add up past Vonage's limit without a shared count.
    """

    def __init__(self, per_second: float, storage_uri: str, api_key: str) -> None:
        super().__init__(per_second)
        storage = storage_from_string(storage_uri, socket_timeout=5, socket_connect_timeout=5)
        self._strategy = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(int(per_second))
        self._key = api_key

    def wait(self) -> None:
        """Block until both this process and the shared window have room."""
        super().wait()
        deadline = time.monotonic() + 30
        while not self._shared_hit():
            if time.monotonic() > deadline:
                return  # never hold a page back for long: Vonage will throttle (status 1)
            time.sleep(self._interval)

    def _shared_hit(self) -> bool:
        """Count one send in the shared window; with the store unreachable, count it as room."""
        try:
            return self._strategy.hit(self._item, "vonage-sms", self._key)
        except Exception:  # noqa: BLE001 - any store failure: a page must not wait on Redis
            log.warning("SMS rate window unreachable: spacing sends in this process only")
            return True


_limiters: dict[tuple[str, str], _RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(api_key: str, storage_uri: str) -> _RateLimiter:
    """Return the limiter for one API key (the limit is per key), shared when storage is."""
    with _limiters_lock:
        if (api_key, storage_uri) not in _limiters:
            shared = storage_uri and not storage_uri.startswith("memory://")
            _limiters[(api_key, storage_uri)] = (
                _SharedRateLimiter(RATE_PER_SECOND, storage_uri, api_key)
                if shared
                else _RateLimiter(RATE_PER_SECOND)
            )
        return _limiters[(api_key, storage_uri)]


@dataclass
class Account:
    """What sending through Vonage needs: credentials, host, sender, timeout, rate limiter."""

    api_key: str
    api_secret: str
    rest_host: str
    sender: str
    timeout: int
    limiter: _RateLimiter


class InvalidSms(ValueError):
    """A message Vonage's SDK refuses to build (e.g. a malformed number)."""


def message(account: Account, to: str, text: str, client_ref: str, unicode: bool) -> SmsMessage:
    """Build the SDK's message for one SMS, or raise InvalidSms."""
    try:
        return SmsMessage(
            to=to.lstrip("+"),
            from_=account.sender,
            text=text,
            client_ref=client_ref,
            type="unicode" if unicode else None,
        )
    except ValidationError as exc:
        raise InvalidSms(str(exc)) from exc


def one_attempt(timeout: int, **hosts: str) -> HttpClientOptions:
    """Return SDK client options for requests that are never sent twice (SMS and calls)."""
    return HttpClientOptions(
        **hosts,
        timeout=timeout,
        # urllib3 must not retry: it would resend on some errors after the POST went out.
        max_retries=0,
        # The SDK re-sends on RemoteDisconnected up to pool_maxsize times (its loop
        # counts attempts with that number): 1 makes exactly one attempt.
        pool_connections=1,
        pool_maxsize=1,
    )


def _vonage_client(state: Account) -> vonage.Vonage:
    """Build an SDK client for a single request that is never sent twice."""
    options = one_attempt(state.timeout, rest_host=state.rest_host)
    return vonage.Vonage(Auth(api_key=state.api_key, api_secret=state.api_secret), options)


def send(state: Account, message: SmsMessage) -> SmsResult:
    """POST one message to Vonage exactly once and classify what came back."""
    # A fresh client per send: no pooled keep-alive connection that Vonage may have
    # closed while idle (that would look like "dropped after sending"), and no
    # shared per-client state between worker threads.
    client = _vonage_client(state)
    state.limiter.wait()
    try:
        response = client.sms.send(message)
        return SmsResult("sent", response.messages[0].message_id, None)
    except SmsError:
        return _classify_body(client.http_client.last_response)
    except HttpRequestError as exc:
        return classify_http(exc.response)
    except requests.RequestException as exc:
        return classify_transport(exc)
    except (KeyError, TypeError, ValueError) as exc:
        return SmsResult("failed", None, f"unreadable answer from Vonage ({exc!r}), {UNKNOWN}")
    finally:
        client.http_client._session.close()  # the SDK has no public close


def _classify_body(response: requests.Response | None) -> SmsResult:
    """Classify a 200 answer whose message status is not "0"."""
    try:
        if response is None:
            raise ValueError("no answer recorded")
        messages = response.json()["messages"]
    except (KeyError, ValueError) as exc:
        return SmsResult("failed", None, f"unreadable answer from Vonage ({exc!r}), {UNKNOWN}")
    accepted = [m for m in messages if m.get("status") == "0"]
    if accepted:
        # Some parts went out: a resend would repeat them.
        error = f"Vonage accepted {len(accepted)} of {len(messages)} parts; not retried"
        return SmsResult("failed", accepted[0].get("message-id"), error)
    status = str(messages[0].get("status"))
    error = f"Vonage status {status}: {messages[0].get('error-text', 'no error text')}"
    return SmsResult("retry" if status in RETRY_STATUSES else "failed", None, error)


def classify_http(response: requests.Response) -> SmsResult:
    """Classify an HTTP error status from Vonage."""
    code = response.status_code
    detail = f"Vonage answered HTTP {code}: {response.text[:200]!r}"
    if code == 504:
        return SmsResult("failed", None, f"{detail}, {UNKNOWN}")
    if code == 429 or 500 <= code < 600:
        return SmsResult("retry", None, detail)
    return SmsResult("failed", None, detail)


def classify_transport(exc: requests.RequestException) -> SmsResult:
    """Classify a network failure: never delivered (retry) or maybe delivered (failed)."""
    if isinstance(exc, requests.exceptions.SSLError):
        # May strike during the handshake or while reading the answer; a
        # certificate problem does not heal by retrying either.
        return SmsResult("failed", None, f"TLS error talking to Vonage ({exc}), not retried")
    if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
        return SmsResult("retry", None, f"could not connect to Vonage, nothing was sent ({exc})")
    if isinstance(exc, requests.ReadTimeout):
        return SmsResult("failed", None, f"no answer from Vonage in time, {UNKNOWN}")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        error = f"connection to Vonage broke after sending, {UNKNOWN} ({exc})"
        return SmsResult("failed", None, error)
    return SmsResult("failed", None, f"request to Vonage failed ({exc!r}), not retried")


def _never_connected(exc: requests.RequestException) -> bool:
    """Tell whether the request failed before any byte of it could be sent."""
    reason = exc.args[0] if exc.args else None
    # urllib3 wraps refused/unresolvable/timed-out connects as a MaxRetryError whose
    # reason is a ConnectTimeoutError (NewConnectionError is a subclass of it).
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, ConnectTimeoutError)


_HMAC_METHODS = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}


def _signed_payload(params: Mapping[str, str]) -> str:
    """Join the params as Vonage signs them: sorted "&key=value", & and = in values as _."""
    pairs = (
        f"&{key}={str(value).replace('&', '_').replace('=', '_')}"
        for key, value in sorted(params.items())
        if key != "sig"
    )
    return "".join(pairs)


def signed_digest(params: Mapping[str, str]) -> str:
    """Return a digest of what the signature covers: the same message, however it is dressed.

    The signature is a function of this payload alone, so a replay with the `sig` in
    another case, or with parameters regrouped into the same string, has the same digest.
    """
    return hashlib.sha256(_signed_payload(params).encode("utf-8")).hexdigest()


def verify_signature(
    params: Mapping[str, str],
    secret: str,
    method: str,
    *,
    max_age: float | None = None,
    now: float | None = None,
) -> bool:
    """Check the `sig` of a signed Vonage webhook (md5hash, md5, sha1, sha256, sha512)."""
    # Not the SDK's Auth.check_signature: it has no "md5hash" (Vonage's default),
    # needs an API key, and its compare_digest on str raises on a non-ASCII sig.
    method = method.strip().lower()
    if method != "md5hash" and method not in _HMAC_METHODS:
        raise ValueError(f"unknown Vonage signature method {method!r}")
    given = params.get("sig") or ""
    if not given or not secret:
        return False
    payload = _signed_payload(params).encode("utf-8")
    if method == "md5hash":
        expected = hashlib.md5(payload + secret.encode("utf-8")).hexdigest()  # noqa: S324
    else:
        expected = hmac.new(secret.encode("utf-8"), payload, _HMAC_METHODS[method]).hexdigest()
    # Vonage sends HMAC digests in upper case and md5hash in lower case.
    if not hmac.compare_digest(given.strip().lower().encode("utf-8"), expected.encode("ascii")):
        return False
    return max_age is None or _fresh(params.get("timestamp"), max_age, now)


def _fresh(timestamp: Any, max_age: float, now: float | None) -> bool:
    """Tell whether a signed unix `timestamp` is within `max_age` seconds of now."""
    try:
        signed_at = float(timestamp)
    except (TypeError, ValueError):
        return False
    return abs((time.time() if now is None else now) - signed_at) <= max_age


def signed_params() -> dict[str, str]:
    """Return the webhook's parameters if Vonage signed them recently; else abort 4xx."""
    params = request.values.to_dict()
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict):  # a JSON list or number is no Vonage webhook: unsigned, so 403
        params.update({k: str(v) for k, v in body.items()})
    # Vonage signs "&name=value" pairs with & and = in values made "_", but not in names:
    # a name holding them can regroup a captured message into other parameters.
    if any("&" in name or "=" in name for name in params):
        abort(403, "Parameter names may not contain & or =.")
    secret = current_app.config["VONAGE_SIGNATURE_SECRET"]
    if not secret:
        log.error("VONAGE_SIGNATURE_SECRET is not set: refusing an unsigned webhook")
        abort(403, "Webhook signatures are not configured on this service.")
    method = current_app.config["VONAGE_SIGNATURE_METHOD"]
    if not verify_signature(params, secret, method, max_age=300):
        abort(403, "Invalid or stale signature.")
    if not params.get("messageId"):
        abort(400, "The webhook has no messageId.")
    return params


@dataclass(frozen=True)
class InboundSms:
    """An SMS a person sent to our number."""

    message_id: str
    sender: str  # E.164, with its "+"
    text: str
    digest: str  # of what the signature covers: a replay repeats it, however dressed


def inbound_sms(params: Mapping[str, str]) -> InboundSms:
    """Read an inbound-SMS webhook's signed parameters."""
    return InboundSms(
        message_id=params["messageId"],
        sender="+" + params.get("msisdn", ""),
        text=params.get("text", ""),
        digest=signed_digest(params),
    )


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: what became of an SMS we sent."""

    message_id: str
    client_ref: str | None  # our Notification id, as sent
    status: str  # delivered, failed, expired, rejected … (lower case)
    timestamp: str
    error_code: str
    digest: str  # of what the signature covers: a replay repeats it, however dressed


def delivery_receipt(params: Mapping[str, str]) -> Receipt:
    """Read a delivery-receipt webhook's signed parameters."""
    return Receipt(
        message_id=params["messageId"],
        client_ref=params.get("client-ref"),
        status=params.get("status", "").lower(),
        timestamp=params.get("message-timestamp", ""),
        error_code=params.get("err-code", "?"),
        digest=signed_digest(params),
    )
