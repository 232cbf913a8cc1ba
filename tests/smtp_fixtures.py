"""Real SMTP servers (aiosmtpd, in threads) as pytest fixtures.

Use from a test module with ``pytest_plugins = ["smtp_fixtures"]`` (or from the
root conftest). Each server listens on a free 127.0.0.1 port and stops at
teardown:

* ``smtp_server``: plain SMTP that records what it receives and can be told
  to refuse (``refuse_next``), to stall (``stall``), to go down and come
  back on the same port (``stop``/``start`` or ``with server.outage():``), or
  to answer every connection or sender with one 5xx, like a misconfigured
  relay (``with server.refusing_everything(554, at="mail"):``).
* ``smtp_tls_server``: requires STARTTLS, presents a trustme certificate for
  ``localhost`` and accepts the login ``.username``/``.password``;
  ``.ca_file`` is the CA to trust.
* ``smtps_server``: implicit TLS (``MAIL_USE_SSL``), same certificate.

``server.config()`` is the Flask config that points an app at the server.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
import typing as t
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SENDER = "desk@supportwidget.test"
TLS_HOSTNAME = "localhost"

RefusalStage = t.Literal["rcpt", "data"]
# Where a misconfigured relay refuses everything: its greeting, or every MAIL FROM.
BlanketStage = t.Literal["connect", "mail"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ReceivedEnvelope:
    """What the SMTP transaction carried besides the message itself."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int]  # the client's address: one per SMTP connection


class _Recorder:
    """The aiosmtpd handler: records messages, refuses or stalls on request."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[ReceivedEnvelope] = []
        self.refusals: list[tuple[int, RefusalStage]] = []
        self.stall_seconds = 0.0
        self.blanket: tuple[int, BlanketStage] | None = None

    def take_refusal(self, stage: RefusalStage) -> int | None:
        """Consume one pending refusal for ``stage`` and return its code."""
        with self.lock:
            if self.refusals and self.refusals[0][1] == stage:
                return self.refusals.pop(0)[0]
        return None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Accept the sender unless the server refuses every sender."""
        if self.blanket is not None and self.blanket[1] == "mail":
            code = self.blanket[0]
            if code == 552:
                return _refusal_reply(code)
            return f"{code} 5.7.1 Relay access denied for everyone (test server)"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Accept the recipient unless this transaction is to be refused."""
        # One refusal covers every recipient of one transaction.
        if not hasattr(envelope, "refusal"):
            envelope.refusal = self.take_refusal("rcpt")  # type: ignore[attr-defined]
        code = envelope.refusal  # type: ignore[attr-defined]
        if code is not None:
            return _refusal_reply(code)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message unless it is to be refused."""
        code = self.take_refusal("data")
        if code is not None:
            return _refusal_reply(code)
        data = envelope.original_content or b""
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        with self.lock:
            self.messages.append(t.cast(EmailMessage, parsed))
            self.envelopes.append(
                ReceivedEnvelope(
                    str(envelope.mail_from), list(envelope.rcpt_tos), data, tuple(session.peer)
                )
            )
            self.lock.notify_all()
        return "250 Message accepted for delivery"


def _refusal_reply(code: int) -> str:
    """Return a realistic reply line for a refusal with ``code``."""
    if code == 552:
        return "552 5.3.4 Message size exceeds fixed maximum message size"
    if 400 <= code < 500:
        return f"{code} 4.3.0 Temporary failure, try again later (test server)"
    return f"{code} 5.1.1 Mailbox unavailable (test server)"


class _StallingSMTP(SMTP):
    """aiosmtpd's SMTP that can hold back its greeting, or greet with a refusal."""

    async def _handle_client(self) -> None:
        delay = self.event_handler.stall_seconds
        if delay > 0:
            # connection_lost cancels this task, so a client that gives up
            # leaves nothing running.
            await asyncio.sleep(delay)
        blanket = self.event_handler.blanket
        if blanket is not None and blanket[1] == "connect" and self.transport is not None:
            await self.push(f"{blanket[0]} 5.3.2 No SMTP service here (test server)")
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    """aiosmtpd's threaded controller that also closes open connections on stop."""

    def factory(self) -> SMTP:
        server = _StallingSMTP(self.handler, **self.SMTP_kwargs)
        self._sessions = [*getattr(self, "_sessions", []), server]
        return server

    def _close_sessions(self) -> None:
        for session in getattr(self, "_sessions", []):
            if session.transport is not None:
                session.transport.close()

    def stop(self, no_assert: bool = False) -> None:
        # aiosmtpd leaves half-closed connections open (its own start-up probe
        # among them); closing them here keeps tests free of ResourceWarnings.
        self.loop.call_soon_threadsafe(self._close_sessions)
        super().stop(no_assert)


class SmtpTestServer:
    """One real SMTP server on 127.0.0.1 with controls to make it misbehave."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        ca_file: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.ca_file = ca_file
        self.username = "mailer"
        self.password = "correct horse battery staple"
        self._tls = tls
        self._implicit_tls = implicit_tls
        self._handler = _Recorder()
        self._controller: Controller | None = None

    def _make_controller(self) -> Controller:
        kwargs: dict[str, t.Any] = {"hostname": self.host, "port": self.port}
        if self._tls is not None and self._implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS; this socket is TLS from the start.
            kwargs.update(ssl_context=self._tls, auth_require_tls=False)
        elif self._tls is not None:
            kwargs.update(tls_context=self._tls, require_starttls=True)
        if self._tls is not None:
            kwargs["authenticator"] = self._authenticate
        return _Controller(self._handler, ready_timeout=5.0, **kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: t.Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (
            self.username.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    @property
    def is_running(self) -> bool:
        """Tell whether the server accepts connections now."""
        return self._controller is not None

    def start(self) -> None:
        """Bring the server up (again) on the same port."""
        if self._controller is None:
            controller = self._make_controller()
            controller.start()
            self._controller = controller

    def stop(self) -> None:
        """Take the server down: connections are refused until ``start``."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Keep the server down inside the ``with`` block."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextmanager
    def refusing_everything(self, code: int = 554, at: BlanketStage = "mail") -> Iterator[None]:
        """Answer ``code`` to every connection or sender inside the ``with`` block."""
        self._handler.blanket = (code, at)
        try:
            yield
        finally:
            self._handler.blanket = None

    def refuse_next(self, n: int = 1, code: int = 451, at: RefusalStage = "rcpt") -> None:
        """Refuse the next ``n`` transactions with ``code`` at RCPT or at end of DATA."""
        with self._handler.lock:
            self._handler.refusals.extend([(code, at)] * n)

    def stall(self, seconds: float) -> None:
        """Hold back the greeting of new connections for ``seconds`` (0 to stop)."""
        self._handler.stall_seconds = seconds

    @property
    def messages(self) -> list[EmailMessage]:
        """Return the messages received so far, oldest first."""
        with self._handler.lock:
            return list(self._handler.messages)

    @property
    def envelopes(self) -> list[ReceivedEnvelope]:
        """Return the envelopes (MAIL FROM, RCPT TO list, raw data) received so far."""
        with self._handler.lock:
            return list(self._handler.envelopes)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
        """Wait until ``count`` messages arrived and return them all."""
        deadline = time.monotonic() + timeout
        with self._handler.lock:
            while len(self._handler.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} message(s) within {timeout} s, "
                        f"got {len(self._handler.messages)}"
                    )
                self._handler.lock.wait(left)
            return list(self._handler.messages)

    def clear(self) -> None:
        """Forget the messages received so far and any pending refusals."""
        with self._handler.lock:
            self._handler.messages.clear()
            self._handler.envelopes.clear()
            self._handler.refusals.clear()

    def config(self) -> dict[str, t.Any]:
        """Return the Flask config that sends this app's mail to this server."""
        config: dict[str, t.Any] = {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": self.port,
            "MAIL_USE_TLS": False,
            "MAIL_USE_SSL": False,
            "MAIL_DEFAULT_SENDER": SENDER,
            "MAIL_TIMEOUT": 5,
            "MAIL_SUPPRESS_SEND": False,
        }
        if self._tls is not None:
            config.update(
                MAIL_SERVER=TLS_HOSTNAME,
                MAIL_USE_TLS=not self._implicit_tls,
                MAIL_USE_SSL=self._implicit_tls,
                MAIL_CA_FILE=str(self.ca_file),
                MAIL_USERNAME=self.username,
                MAIL_PASSWORD=self.password,
            )
        return config


@pytest.fixture(scope="session")
def smtp_ca() -> trustme.CA:
    """Return the test CA that signs the TLS servers' certificate."""
    return trustme.CA()


@pytest.fixture(scope="session")
def smtp_tls_context(smtp_ca: trustme.CA) -> ssl.SSLContext:
    """Return a server SSL context with a certificate for ``localhost``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    smtp_ca.issue_cert(TLS_HOSTNAME).configure_cert(context)
    return context


@pytest.fixture(scope="session")
def smtp_ca_file(smtp_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the path of the test CA's certificate (a PEM bundle)."""
    path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    smtp_ca.cert_pem.write_to_path(str(path))
    return path


@contextmanager
def _running(server: SmtpTestServer) -> Iterator[SmtpTestServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """Run a plain recording SMTP server for one test."""
    with _running(SmtpTestServer()) as server:
        yield server


@pytest.fixture
def smtp_tls_server(
    smtp_tls_context: ssl.SSLContext, smtp_ca_file: Path
) -> Iterator[SmtpTestServer]:
    """Run an SMTP server that requires STARTTLS and a login, for one test."""
    with _running(SmtpTestServer(tls=smtp_tls_context, ca_file=smtp_ca_file)) as server:
        yield server


@pytest.fixture
def smtps_server(smtp_tls_context: ssl.SSLContext, smtp_ca_file: Path) -> Iterator[SmtpTestServer]:
    """Run an implicit-TLS (SMTPS) server that requires a login, for one test."""
    server = SmtpTestServer(tls=smtp_tls_context, implicit_tls=True, ca_file=smtp_ca_file)
    with _running(server) as running:
        yield running
