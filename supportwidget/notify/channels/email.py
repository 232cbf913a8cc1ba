"""The e-mail channel: Flask-Mail with timeouts, verified TLS and clear errors.

Flask-Mail opens ``smtplib.SMTP(host, port)`` without a timeout and starts TLS
without verifying the server's certificate. ``Mail`` here is a Flask-Mail
subclass whose connections use ``MAIL_TIMEOUT`` and a verifying SSL context;
``send_email`` sends one message and turns every failure into a
``TransientMailError`` (retry later) or a ``PermanentMailError`` (don't).

Which failures are passing: a failure is permanent only when the relay judged
*this message* — a recipient refused with 5xx at RCPT, the content refused with
5xx after DATA, the message too big (552, or enhanced status x.3.4 / x.2.3, at
MAIL FROM too) — or when the message cannot be built. Everything that fails
before the relay looked at a recipient is the same for every message, so it is
an outage of the relay or of our settings, and fixing it once must deliver the
backlog: refused or timed-out connections, any 4xx, a 5xx greeting (554 "no
service"), a refused EHLO, STARTTLS, TLS certificate or login, a 5xx to MAIL
FROM (a relay misconfigured to refuse everyone). The outbox retries those for
``OUTBOX_RETRY_HOURS``, the error showing on the ticket page meanwhile.

With no ``MAIL_SERVER`` configured, messages are written as ``.eml`` files to
``<instance_path>/mail/`` instead, so the service runs without an SMTP relay.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import tempfile
import time
import typing as t
from pathlib import Path
from types import TracebackType

import flask_mail
from flask import Flask, current_app
from flask_mail import Message

from supportwidget.config import use_defaults
from supportwidget.models import Notification
from supportwidget.notify import messages
from supportwidget.notify.channels.base import Outcome, send_each
from supportwidget.platform import the_app
from supportwidget.vocab import NotificationChannel

__all__ = [
    "MailError",
    "Mail",
    "Message",
    "PermanentMailError",
    "TransientMailError",
    "eml_path",
    "mail",
    "Outgoing",
    "send_email",
]

# TLS failures that come from configuration (wrong port for SSL, no common
# protocol), not from a flaky network: the error names the settings to check.
_SETTINGS_SSL_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_SHARED_CIPHER",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
    }
)


class MailError(Exception):
    """An e-mail could not be sent; ``smtp_code`` is the server's reply code if any."""

    def __init__(self, text: str, smtp_code: int | None = None) -> None:
        super().__init__(text)
        self.smtp_code = smtp_code


class TransientMailError(MailError):
    """A failure of the relay or our settings, the same for every message: retry later."""


class PermanentMailError(MailError):
    """A failure of this message (recipient or content refused, too big): don't retry."""


class _MailState(flask_mail._Mail):
    """Flask-Mail's per-app settings plus timeout, CA bundle and the .eml folder."""

    port: int  # always set (Flask-Mail's own state may leave it None)

    def __init__(
        self,
        config: t.Mapping[str, t.Any],
        *,
        debug: bool | int,
        instance_path: str,
    ) -> None:
        use_ssl = bool(config["MAIL_USE_SSL"])
        use_tls = bool(config["MAIL_USE_TLS"])
        if use_ssl and use_tls:
            raise ValueError("Set only one of MAIL_USE_SSL (port 465) and MAIL_USE_TLS (587).")
        super().__init__(
            server=config.get("MAIL_SERVER") or "",  # "": no server, write .eml files
            username=config.get("MAIL_USERNAME"),
            password=config.get("MAIL_PASSWORD"),
            port=int(config.get("MAIL_PORT") or (465 if use_ssl else 25)),
            use_tls=use_tls,
            use_ssl=use_ssl,
            default_sender=config.get("MAIL_DEFAULT_SENDER"),
            debug=int(debug if config["MAIL_DEBUG"] is None else config["MAIL_DEBUG"]),
            max_emails=config.get("MAIL_MAX_EMAILS"),
            # Unlike Flask-Mail, TESTING alone does not silently drop mail: tests
            # here talk to a real SMTP server or read the .eml folder.
            suppress=bool(config["MAIL_SUPPRESS_SEND"]),
            ascii_attachments=bool(config["MAIL_ASCII_ATTACHMENTS"]),
        )
        self.timeout = float(config["MAIL_TIMEOUT"])
        self.ca_file: str | None = config.get("MAIL_CA_FILE") or None
        self.eml_folder = Path(instance_path) / "mail"

    @property
    def writes_files(self) -> bool:
        """Tell whether mail goes to the .eml folder because no server is set."""
        return not self.server

    def ssl_context(self) -> ssl.SSLContext:
        """Return a context that checks the host name and verifies the certificate."""
        return ssl.create_default_context(cafile=self.ca_file)

    def connect(self) -> _SafeConnection:
        """Open a connection that honours the timeout and verifies TLS."""
        return _SafeConnection(self)


class _SafeConnection(flask_mail.Connection):
    """A Flask-Mail connection with a timeout, verified TLS and an .eml fallback."""

    # Flask-Mail annotates this as Mail, yet its own Mail.connect() passes the per-app
    # state (_Mail), as connect() here does.
    mail: _MailState  # type: ignore[assignment]

    def __init__(self, mail: _MailState) -> None:
        super().__init__(mail)  # type: ignore[arg-type]  # see `mail` above

    def __enter__(self) -> _SafeConnection:
        self.num_emails = 0
        self.host = None
        if not (self.mail.suppress or self.mail.writes_files):
            self.host = self.configure_host()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.host is None:
            return
        # A failed QUIT after "250 OK" must not turn a delivered message into
        # an error (the outbox would resend it), nor hide the real error.
        try:
            self.host.quit()
        except (smtplib.SMTPException, OSError):
            self.host.close()

    def configure_host(self) -> smtplib.SMTP:
        """Connect, start TLS and log in, every step bounded by MAIL_TIMEOUT."""
        state = self.mail
        host: smtplib.SMTP
        if state.use_ssl:
            host = smtplib.SMTP_SSL(
                state.server, state.port, timeout=state.timeout, context=state.ssl_context()
            )
        else:
            host = smtplib.SMTP(state.server, state.port, timeout=state.timeout)
        try:
            host.set_debuglevel(int(state.debug))
            if state.use_tls:
                host.starttls(context=state.ssl_context())
            if state.username and state.password:
                host.login(state.username, state.password)
        except BaseException:
            host.close()
            raise
        return host

    def send(self, message: Message, envelope_from: str | tuple[str, str] | None = None) -> None:
        """Deliver one message to the server (or the .eml folder) and signal it."""
        if not message.send_to:
            raise PermanentMailError("The message has no recipients.")
        if not message.sender:
            raise PermanentMailError("The message has no sender: set MAIL_DEFAULT_SENDER.")
        if message.has_bad_headers():
            raise PermanentMailError("A sender, recipient or subject contains a line break.")
        if message.date is None:
            message.date = time.time()
        if self.mail.writes_files and not self.mail.suppress:
            _write_eml(self.mail.eml_folder, message)
        elif self.host is not None:
            refused = self.host.sendmail(
                flask_mail.sanitize_address(envelope_from or message.sender),
                flask_mail.sanitize_addresses(message.send_to),
                message.as_bytes(),
                message.mail_options,
                message.rcpt_options,
            )
            if refused:
                # Some recipients have the message: a retry would duplicate it for them.
                raise PermanentMailError(
                    "Delivered to some recipients, refused for " + _describe_refused(refused)
                )
        flask_mail.email_dispatched.send(the_app(), message=message)


class Mail(flask_mail.Mail):
    """Flask-Mail whose connections use a timeout and a verifying SSL context."""

    def init_app(self, app: Flask) -> _MailState:
        """Bind to ``app`` and warn loudly when mail goes to files, not SMTP."""
        use_defaults(app.config, "MAIL_")
        state = _MailState(app.config, debug=app.debug, instance_path=app.instance_path)
        app.extensions["mail"] = state
        if state.writes_files:
            app.logger.warning(
                "MAIL_SERVER is not set: e-mail is NOT sent, it is written as .eml files "
                "to %s. Set MAIL_SERVER (and MAIL_PORT, MAIL_USE_TLS ...) to send it.",
                state.eml_folder,
            )
        return state

    def connect(self) -> _SafeConnection:
        """Open a safe connection for the current app."""
        return _current_state().connect()


mail = Mail()


def send_email(message: Message) -> None:
    """Send ``message`` as built, raising Transient/PermanentMailError on failure."""
    with Outgoing() as outgoing:
        outgoing.send(message)


class Outgoing:
    """Send several messages over one SMTP connection, as a batch of the outbox.

    Connects on the first send. After a reply error the connection is dropped and the
    next message reconnects; after a network failure (refused, timed out, cut) the rest
    of the batch fails at once with the same error instead of waiting out the timeout
    again for each message.
    """

    def __init__(self) -> None:
        self.state = _current_state()
        self.where = f"{self.state.server}:{self.state.port}"
        self.connection: _SafeConnection | None = None
        self.broken: MailError | None = None

    def __enter__(self) -> Outgoing:
        return self

    def __exit__(self, *exc: object) -> None:
        self._drop()

    def send(self, message: Message) -> None:
        """Send one message, raising Transient/PermanentMailError on failure."""
        if self.broken is not None:
            raise type(self.broken)(str(self.broken), self.broken.smtp_code)
        if self.connection is None:
            try:
                self.connection = self.state.connect().__enter__()
            except Exception as error:
                self.broken = classify_error(error, self.where)
                raise self.broken from error
        try:
            self.connection.send(message)
        except MailError:
            raise
        except smtplib.SMTPRecipientsRefused as error:
            # The server reset the transaction; the connection is fine for the next one.
            raise classify_error(error, self.where) from error
        except Exception as error:
            failure = classify_error(error, self.where)
            self._drop(graceful=False)
            # A reply error concerns this message; a network failure every message after it.
            if isinstance(error, OSError) and not isinstance(error, smtplib.SMTPResponseException):
                self.broken = failure
            raise failure from error

    def _drop(self, graceful: bool = True) -> None:
        """Close the connection: with QUIT when it is healthy, at once after a failure."""
        connection, self.connection = self.connection, None
        if connection is None or connection.host is None:
            return
        if graceful:
            connection.__exit__(None, None, None)
        else:
            connection.host.close()


def eml_path(message_id: str, folder: Path) -> Path:
    """Return where the message with ``message_id`` is written in ``folder``."""
    bare = message_id.strip().strip("<>")
    name = re.sub(r"[^A-Za-z0-9._@+=-]", "_", bare)[:120].lstrip(".") or "message"
    if name != bare:
        # Two ids that sanitize alike must not overwrite each other.
        name += "-" + hashlib.sha256(message_id.encode()).hexdigest()[:12]
    return folder / f"{name}.eml"


def classify_error(error: BaseException, where: str) -> MailError:
    """Map an smtplib, socket or ssl exception to a Transient/PermanentMailError."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        kind = TransientMailError if any(400 <= c < 500 for c in codes) else PermanentMailError
        text = f"{where} refused every recipient: {_describe_refused(error.recipients)}"
        return kind(text, smtp_code=codes[0] if codes else None)
    if isinstance(error, smtplib.SMTPResponseException):
        return _classify_reply(error, where)
    if isinstance(error, ssl.SSLCertVerificationError):
        return TransientMailError(
            f"TLS certificate verification failed for {where}: {_sentence(error.verify_message)} "
            "MAIL_SERVER must match the certificate's name (set MAIL_CA_FILE for a private "
            "CA); the relay's certificate may have expired. Retried until it is fixed."
        )
    if isinstance(error, ssl.SSLError):
        hint = " (check MAIL_PORT, MAIL_USE_SSL, MAIL_USE_TLS)"
        hint = hint if error.reason in _SETTINGS_SSL_REASONS else ""
        return TransientMailError(f"TLS with {where} failed: {error.reason or error}{hint}")
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return TransientMailError(f"{where} does not support what MAIL_* asks for: {error}")
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return TransientMailError(f"{where} did not answer within {_timeout_text()}.")
    if isinstance(error, smtplib.SMTPServerDisconnected | OSError):
        return TransientMailError(f"Could not talk to {where}: {error}")
    if isinstance(error, smtplib.SMTPException):
        return TransientMailError(f"SMTP with {where} failed: {error}")
    return PermanentMailError(f"Could not build or send the message: {error!r}")


def _classify_reply(error: smtplib.SMTPResponseException, where: str) -> MailError:
    """Classify a reply-code error: permanent only when it judges this message."""
    code = error.smtp_code
    reply = _decode(error.smtp_error)
    what = {
        smtplib.SMTPSenderRefused: "refused the sender",
        smtplib.SMTPDataError: "refused the message",
        smtplib.SMTPAuthenticationError: "refused the login (MAIL_USERNAME/MAIL_PASSWORD)",
        smtplib.SMTPConnectError: "refused the connection",
        smtplib.SMTPHeloError: "refused our greeting",
    }.get(type(error), "answered")
    about_message = isinstance(error, smtplib.SMTPDataError) or _too_big(code, reply)
    kind = PermanentMailError if code >= 500 and about_message else TransientMailError
    return kind(f"{where} {what}: {code} {reply}", smtp_code=code)


def _too_big(code: int, reply: str) -> bool:
    """Tell whether a reply refuses the message for its size (at MAIL FROM or after DATA)."""
    return code == 552 or re.search(r"\b5\.(3\.4|2\.3)\b", reply) is not None


def _describe_refused(refused: t.Mapping[str, tuple[int, bytes]]) -> str:
    """Describe refused recipients as ``addr (code reply)`` pairs."""
    return ", ".join(f"{addr} ({code} {_decode(reply)})" for addr, (code, reply) in refused.items())


def _sentence(text: str | None) -> str:
    """Return ``text`` ending in exactly one full stop."""
    return (text or "unknown reason").rstrip(". ") + "."


def _decode(reply: bytes | str) -> str:
    """Return a server reply as text, whatever bytes it held."""
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply)


def _timeout_text() -> str:
    """Describe the configured timeout for error messages."""
    state = current_app.extensions.get("mail")
    return f"{state.timeout:g} s (MAIL_TIMEOUT)" if isinstance(state, _MailState) else "time"


def _write_eml(folder: Path, message: Message) -> Path:
    """Write the message's RFC 822 bytes atomically, overwriting the same Message-ID."""
    target = eml_path(message.msgId, folder)
    data = message.as_bytes()
    tmp: str | None = None
    # Write then rename, so a reader never sees half a file and two writers of
    # the same Message-ID leave one whole copy.
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except OSError as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise TransientMailError(f"Could not write {target}: {error}") from error
    return target


def _current_state() -> _MailState:
    """Return this app's mail settings, or explain that init_app is missing."""
    state = current_app.extensions.get("mail")
    if not isinstance(state, _MailState):
        raise RuntimeError("supportwidget.mail.mail.init_app(app) was not called.")
    return state


class EmailChannel:
    """E-mail through the SMTP relay (or .eml files): a batch shares one connection."""

    name: str = NotificationChannel.EMAIL
    lane = "mail"
    batch = 10
    threads = 2
    # Staff hear of a new ticket within 2 s: an idle thread looks again every 0.5 s at most
    # (Huey's 10 s default cost up to 10 s after a quiet minute). Blocking storages (Redis)
    # do not poll at all. Two idle threads on SQLite: four cheap queries a second.
    poll = (0.05, 0.5)

    def send(self, rows: t.Sequence[Notification], until: float) -> list[Outcome]:
        """Send each row's e-mail over one connection, until the deadline."""
        with Outgoing() as outgoing:
            return send_each(rows, until, lambda row: _send_row(row, outgoing))

    def health(self) -> str:
        """Say whether mail goes to the SMTP relay or to .eml files."""
        return "files" if _current_state().writes_files else "smtp"


def _send_row(row: Notification, outgoing: Outgoing) -> Outcome:
    """Send one outbox row's e-mail and classify the outcome."""
    try:
        outgoing.send(messages.email_message(row))
    except TransientMailError as exc:
        return "retry", str(exc)
    except PermanentMailError as exc:
        return "failed", str(exc)
    return "sent", None
