"""A local HTTPS stand-in for Vonage's SMS and Voice APIs, plus the pytest fixtures that start it.

The real Vonage SDK always speaks https, so the stand-in serves TLS with a
certificate from a throw-away trustme CA; the CA bundle reaches the SDK's
requests session through REQUESTS_CA_BUNDLE.

Voice: POST /v1/calls checks the application's RS256 JWT against its public key, records
the call, and answers as Vonage does. What Vonage would then send the service (answer,
event and input callbacks, each with a JWT signed by the signature secret) is built by
`VoiceCall.callback`, for the test to send and check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from supportwidget.notify.channels.sms import sms

API_KEY = "standin-key"
API_SECRET = "standin-secret"
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-standin00001"

# Behaviours a destination number can be given through `VonageStandin.behaviour`.
BEHAVIOURS = ("ok", "throttled", "invalid", "quota", "http500", "http503", "drop", "stall")

# Vonage's own status codes and error texts for the statuses the stand-in answers.
_STATUS = {
    "throttled": ("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry"),
    "invalid": ("3", "Invalid to address"),
    "quota": ("9", "Quota Exceeded - rejected"),
    "bad-credentials": ("4", "Bad Credentials"),
    "missing": ("2", "Missing to param"),
}


@dataclass
class VoiceCall:
    """A call the stand-in was asked to place, and how to play Vonage's side of it."""

    uuid: str
    to: str
    answer_url: str
    event_url: str
    request: dict[str, Any]

    def callback(
        self,
        url: str,
        secret: str,
        issued_at: float | None = None,
        application_id: str = APPLICATION_ID,
        **body: Any,
    ) -> tuple[str, bytes, dict[str, str]]:
        """Return (path?query, JSON body, headers) of a callback Vonage signs for this call."""
        payload = json.dumps(
            {"uuid": self.uuid, "conversation_uuid": "CON-" + self.uuid, "to": self.to, **body}
        ).encode()
        return signed_callback(url, payload, secret, issued_at, application_id)


def signed_callback(
    url: str,
    payload: bytes,
    secret: str,
    issued_at: float | None = None,
    application_id: str = APPLICATION_ID,
) -> tuple[str, bytes, dict[str, str]]:
    """Sign a callback body the way Vonage does: HS256 JWT with iat, jti and payload_hash."""
    claims = {
        "iat": int(time.time() if issued_at is None else issued_at),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(payload).hexdigest(),
        "api_key": API_KEY,
        "application_id": application_id,
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return f"{parts.path}?{parts.query}", payload, headers


_KEYS: dict[str, tuple[str, str]] = {}


def application_keys() -> tuple[str, str]:
    """Return a test Voice application's private and public key (PEM), made once per run."""
    if not _KEYS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        _KEYS["pair"] = (private, public)
    return _KEYS["pair"]


@dataclass
class VonageStandin:
    """What a test sees of the stand-in: its address, what it read, how it answers."""

    host: str
    ca_bundle: Path
    behaviour: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stall_seconds: float = 5.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    message_ids: int = 0
    calls: list[VoiceCall] = field(default_factory=list)

    def calls_to(self, number: str) -> list[VoiceCall]:
        """Return the calls placed to one number."""
        with self.lock:
            return [call for call in self.calls if call.to == number]

    def record(self, entry: dict[str, Any]) -> None:
        """Remember one request the server read completely."""
        with self.lock:
            self.requests.append(entry)

    def next_message_id(self) -> str:
        """Return a fresh id shaped like Vonage's (hex, 16+ characters)."""
        with self.lock:
            self.message_ids += 1
            return f"0B00000{self.message_ids:011X}"

    def to(self, number: str) -> list[dict[str, Any]]:
        """Return the requests read for one destination number."""
        with self.lock:
            return [r for r in self.requests if r["to"] == number]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    def do_POST(self) -> None:
        """Answer POST /sms/json and POST /v1/calls the way Vonage does."""
        standin = self.server.standin
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0] == "/v1/calls":
            self._call(body)
            return
        if self.path.split("?")[0] != "/sms/json":
            self._reply(404, {"type": "about:blank", "title": "Not Found"})
            return
        params = self._params(body)
        entry = {
            "to": params.get("to"),
            "from": params.get("from"),
            "text": params.get("text"),
            "client-ref": params.get("client-ref"),
            "type": params.get("type"),
            "content-type": self.headers.get("Content-Type"),
            "at": time.monotonic(),
        }
        standin.record(entry)
        behaviour = standin.behaviour.get(entry["to"] or "", "ok")
        if behaviour == "drop":
            # The request was read in full; hang up without a word.
            self.close_connection = True
            return
        if behaviour == "stall":
            standin.stop.wait(standin.stall_seconds)
            behaviour = "ok"
        if behaviour in ("http500", "http503"):
            self._reply(int(behaviour[4:]), None)
            return
        if not self._authorised(params):
            behaviour = "bad-credentials"
        elif not (entry["to"] and entry["from"] and entry["text"]):
            behaviour = "missing"
        self._reply(200, self._sms_answer(entry, behaviour))

    def _call(self, body: bytes) -> None:
        """Place a call: check the application's JWT, record the request, answer 201."""
        standin = self.server.standin
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, application_keys()[1], algorithms=["RS256"])
        except jwt.InvalidTokenError as exc:
            self._reply(401, {"type": "unauthorized", "title": "Invalid JWT", "detail": str(exc)})
            return
        request = json.loads(body or b"{}")
        to = request["to"][0]["number"]
        behaviour = standin.behaviour.get(to, "ok")
        if claims.get("application_id") != APPLICATION_ID:
            self._reply(401, {"type": "unauthorized", "title": "Unknown application"})
            return
        if behaviour == "drop":
            self.close_connection = True
            return
        if behaviour in ("http500", "http503"):
            self._reply(int(behaviour[4:]), None)
            return
        call = VoiceCall(
            str(uuid.uuid4()), to, request["answer_url"][0], request["event_url"][0], request
        )
        with standin.lock:
            standin.calls.append(call)
        answer = {
            "uuid": call.uuid,
            "status": "started",
            "direction": "outbound",
            "conversation_uuid": "CON-" + call.uuid,
        }
        self._reply(201, answer)

    def _params(self, body: bytes) -> dict[str, str]:
        """Parse a form-encoded or JSON body (the SDK sends a form)."""
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            return {k: str(v) for k, v in json.loads(body or b"{}").items()}
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))

    def _authorised(self, params: dict[str, str]) -> bool:
        """Accept Basic auth or api_key/api_secret in the body, as Vonage does."""
        expected = base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
        if self.headers.get("Authorization") == f"Basic {expected}":
            return True
        return params.get("api_key") == API_KEY and params.get("api_secret") == API_SECRET

    def _sms_answer(self, entry: dict[str, Any], behaviour: str) -> dict[str, Any]:
        """Build Vonage's JSON answer for one single-part message."""
        message: dict[str, Any] = {"to": entry["to"]}
        if behaviour in _STATUS:
            message["status"], message["error-text"] = _STATUS[behaviour]
        else:
            message.update(
                {
                    "message-id": self.server.standin.next_message_id(),
                    "status": "0",
                    "remaining-balance": "12.34560000",
                    "message-price": "0.03330000",
                    "network": "23410",
                }
            )
        if entry["client-ref"] is not None:
            message["client-ref"] = entry["client-ref"]
        return {"message-count": "1", "messages": [message]}

    def _reply(self, status: int, payload: dict[str, Any] | None) -> None:
        """Write one response with a body and a Content-Length."""
        if payload is None:
            body, ctype = b"<html><body>Internal error</body></html>", "text/html"
        else:
            body, ctype = json.dumps(payload).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client gave up (a stall past its timeout)


class _Server(ThreadingHTTPServer):
    # Join handler threads on close so no test leaves one behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, standin_ca: trustme.CA) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        standin_ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.tls)
        self.standin: VonageStandin

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the handler thread, never in the accept loop."""
        request.settimeout(10)
        try:
            tls_socket = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls_socket, client_address)
        finally:
            tls_socket.close()


@contextmanager
def serving(folder: Path) -> Iterator[VonageStandin]:
    """Run the HTTPS stand-in with a new CA whose bundle is written into `folder`."""
    ca = trustme.CA()
    bundle = folder / "vonage-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server = _Server(ca)
    standin = VonageStandin(host=f"127.0.0.1:{server.server_address[1]}", ca_bundle=bundle)
    server.standin = standin
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="vonage-standin", daemon=True
    )
    thread.start()
    try:
        yield standin
    finally:
        standin.stop.set()  # release any stalled handler
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def vonage_standin(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[VonageStandin]:
    """Run the HTTPS stand-in for one test and make requests trust its CA."""
    with serving(tmp_path_factory.mktemp("vonage-ca")) as standin:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(standin.ca_bundle))
        yield standin


@pytest.fixture
def sms_app(vonage_standin: VonageStandin, tmp_path: Path) -> Iterator[Flask]:
    """Return a minimal Flask app with `sms` bound to the stand-in, in an app context."""
    app = Flask("sms_test", instance_path=str(tmp_path / "instance"))
    app.config.update(
        TESTING=True,
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        SMS_FROM="SupportDesk",
        SMS_TIMEOUT=1,
    )
    sms.init_app(app)
    with app.app_context():
        yield app
