"""The e-mail channel against real SMTP servers (aiosmtpd) and real TLS."""

from __future__ import annotations

import email
import email.policy
import logging
import threading
import time
import typing as t
from pathlib import Path

import pytest
import trustme
from flask import Flask

from supportwidget.notify.channels.email import (
    Message,
    Outgoing,
    PermanentMailError,
    TransientMailError,
    mail,
    send_email,
)
from supportwidget.notify.mime import LeanMessage

pytest_plugins = ["smtp_fixtures"]

if t.TYPE_CHECKING:
    # Only for annotations: importing it for real before pytest_plugins would
    # stop pytest from rewriting its asserts.
    from smtp_fixtures import SmtpTestServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def make_app(instance: Path, **config: t.Any) -> Flask:
    """Build a bare app with the mail extension bound and ``config`` applied."""
    app = Flask(__name__, instance_path=str(instance))
    app.config.update(config)
    mail.init_app(app)
    return app


def ticket_message(msg_id: str = "<notification-7@supportwidget.test>") -> Message:
    """Build a staff notification like the outbox sends (needs an app context)."""
    message = Message(
        subject="SUP-12 emergency: Café site is down",
        recipients=["oncall@agency.test"],
        body="The site https://client.test is offline.",
        html="<p>The site <b>client.test</b> is offline.</p>",
        extra_headers={
            "References": "<ticket-12@supportwidget.test>",
            "In-Reply-To": "<ticket-12@supportwidget.test>",
        },
    )
    message.msgId = msg_id
    message.attach("screenshot.png", "image/png", PNG)
    return message


def send_one(app: Flask, message_id: str = "<notification-7@supportwidget.test>") -> None:
    """Send one ticket message from inside ``app``."""
    with app.app_context():
        send_email(ticket_message(message_id))


def test_sent_message_arrives_unchanged(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    send_one(app)

    [received] = smtp_server.messages
    assert received["Subject"] == "SUP-12 emergency: Café site is down"
    assert received["Message-ID"] == "<notification-7@supportwidget.test>"
    assert received["References"] == "<ticket-12@supportwidget.test>"
    assert received["In-Reply-To"] == "<ticket-12@supportwidget.test>"
    assert received["From"] == "desk@supportwidget.test"
    assert "offline" in received.get_body(("plain",)).get_content()
    assert "<b>client.test</b>" in received.get_body(("html",)).get_content()
    [attachment] = received.iter_attachments()
    assert attachment.get_filename() == "screenshot.png"
    assert attachment.get_content() == PNG
    assert smtp_server.envelopes[0].rcpt_tos == ["oncall@agency.test"]
    assert not (tmp_path / "mail").exists()


def test_server_down_fails_fast_as_transient(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    with smtp_server.outage():
        started = time.monotonic()
        with pytest.raises(TransientMailError, match=str(smtp_server.port)):
            send_one(app)
        assert time.monotonic() - started < 2
    # Back up on the same port: the retry goes through.
    send_one(app)
    assert len(smtp_server.messages) == 1


def test_silent_server_times_out_as_transient(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    app = make_app(tmp_path, **{**smtp_server.config(), "MAIL_TIMEOUT": 1})
    smtp_server.stall(30)
    started = time.monotonic()
    with pytest.raises(TransientMailError, match="MAIL_TIMEOUT"):
        send_one(app)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5  # the server would stall for 30 s
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("code", "stage", "error"),
    [
        (451, "rcpt", TransientMailError),
        (550, "rcpt", PermanentMailError),
        (452, "data", TransientMailError),
        (552, "data", PermanentMailError),
    ],
)
def test_refusal_code_decides_retry(
    smtp_server: SmtpTestServer,
    tmp_path: Path,
    code: int,
    stage: t.Literal["rcpt", "data"],
    error: type[Exception],
) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    smtp_server.refuse_next(1, code=code, at=stage)
    with pytest.raises(error, match=str(code)) as raised:
        send_one(app)
    assert raised.value.smtp_code == code
    assert smtp_server.messages == []
    send_one(app)
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize(
    ("code", "stage", "error"),
    [
        (554, "connect", TransientMailError),
        (554, "mail", TransientMailError),
        (550, "mail", TransientMailError),
        (552, "mail", PermanentMailError),  # too big: about this message
    ],
)
def test_a_relay_refusing_everyone_is_passing(
    smtp_server: SmtpTestServer,
    tmp_path: Path,
    code: int,
    stage: t.Literal["connect", "mail"],
    error: type[Exception],
) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    with smtp_server.refusing_everything(code, at=stage), pytest.raises(error, match=str(code)):
        send_one(app)
    assert smtp_server.messages == []
    send_one(app)
    assert len(smtp_server.messages) == 1


def send_batch(app: Flask, count: int) -> list[Exception | None]:
    """Send `count` ticket messages over one Outgoing batch; return each one's error or None."""
    errors: list[Exception | None] = []
    with app.app_context(), Outgoing() as outgoing:
        for n in range(count):
            try:
                outgoing.send(ticket_message(f"<n{n}@supportwidget.test>"))
                errors.append(None)
            except (TransientMailError, PermanentMailError) as error:
                errors.append(error)
    return errors


def test_a_batch_shares_one_connection(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    assert send_batch(app, 3) == [None, None, None]
    assert [m["Message-ID"] for m in smtp_server.messages] == [
        f"<n{n}@supportwidget.test>" for n in range(3)
    ]
    assert len({e.peer for e in smtp_server.envelopes}) == 1


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_refused_message_does_not_stop_its_batch(
    smtp_server: SmtpTestServer,
    tmp_path: Path,
    stage: t.Literal["rcpt", "data"],
) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    smtp_server.refuse_next(1, code=550, at=stage)
    first, *rest = send_batch(app, 3)
    assert isinstance(first, PermanentMailError) and first.smtp_code == 550
    assert rest == [None, None]
    assert [m["Message-ID"] for m in smtp_server.messages] == [
        "<n1@supportwidget.test>",
        "<n2@supportwidget.test>",
    ]


def test_a_silent_server_costs_a_batch_one_timeout(
    smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    app = make_app(tmp_path, **{**smtp_server.config(), "MAIL_TIMEOUT": 2})
    smtp_server.stall(30)
    started = time.monotonic()
    errors = send_batch(app, 3)
    assert time.monotonic() - started < 5  # one MAIL_TIMEOUT, not three (6 s)
    assert all(isinstance(e, TransientMailError) and "MAIL_TIMEOUT" in str(e) for e in errors)
    assert smtp_server.messages == []


def test_starttls_with_trusted_ca(smtp_tls_server: SmtpTestServer, tmp_path: Path) -> None:
    app = make_app(tmp_path, **smtp_tls_server.config())
    send_one(app)
    [received] = smtp_tls_server.messages
    assert received["Message-ID"] == "<notification-7@supportwidget.test>"


def test_tls_server_refuses_plain_mail(smtp_tls_server: SmtpTestServer, tmp_path: Path) -> None:
    # Shows the STARTTLS test above really went through TLS. A 5xx to MAIL FROM is the
    # same for every message (here: our settings): retried until someone fixes them.
    config = {**smtp_tls_server.config(), "MAIL_USE_TLS": False, "MAIL_USERNAME": None}
    app = make_app(tmp_path, **config)
    with pytest.raises(TransientMailError, match="530"):
        send_one(app)


@pytest.mark.parametrize("ca", ["other-ca", "system-store"])
def test_untrusted_certificate_is_refused_and_retried(
    smtp_tls_server: SmtpTestServer, tmp_path: Path, ca: str
) -> None:
    config = smtp_tls_server.config()
    if ca == "other-ca":
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        config["MAIL_CA_FILE"] = str(other)
    else:
        config["MAIL_CA_FILE"] = None
    app = make_app(tmp_path, **config)
    # Retried (an expired relay certificate is an outage): nothing is sent meanwhile.
    with pytest.raises(TransientMailError, match="certificate verification failed"):
        send_one(app)
    assert smtp_tls_server.messages == []


def test_certificate_for_another_name_is_refused(
    smtp_tls_server: SmtpTestServer, tmp_path: Path
) -> None:
    # The certificate names "localhost"; reaching it as 127.0.0.1 must fail.
    app = make_app(tmp_path, **{**smtp_tls_server.config(), "MAIL_SERVER": "127.0.0.1"})
    with pytest.raises(TransientMailError, match="certificate verification failed.*127.0.0.1"):
        send_one(app)


def test_wrong_password_is_named_and_retried(
    smtp_tls_server: SmtpTestServer, tmp_path: Path
) -> None:
    app = make_app(tmp_path, **{**smtp_tls_server.config(), "MAIL_PASSWORD": "wrong"})
    with pytest.raises(TransientMailError, match="535") as raised:
        send_one(app)
    assert "MAIL_PASSWORD" in str(raised.value)
    assert smtp_tls_server.messages == []


def test_implicit_tls(smtps_server: SmtpTestServer, tmp_path: Path) -> None:
    send_one(make_app(tmp_path, **smtps_server.config()))
    assert len(smtps_server.messages) == 1
    untrusted = make_app(tmp_path, **{**smtps_server.config(), "MAIL_CA_FILE": None})
    with pytest.raises(TransientMailError, match="certificate verification failed"):
        send_one(untrusted)


def test_without_mail_server_writes_eml(
    smtp_server: SmtpTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Plain Flask-Mail would fall back to 127.0.0.1 and reach this server.
    config = {**smtp_server.config(), "MAIL_SERVER": None}
    with caplog.at_level(logging.WARNING):
        app = make_app(tmp_path, **config)
    assert str(tmp_path / "mail") in caplog.text
    assert "NOT sent" in caplog.text

    send_one(app)
    send_one(app)  # the same Message-ID again overwrites, it does not pile up

    [written] = (tmp_path / "mail").glob("*.eml")
    parsed = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == "<notification-7@supportwidget.test>"
    assert parsed["References"] == "<ticket-12@supportwidget.test>"
    assert parsed["Subject"] == "SUP-12 emergency: Café site is down"
    assert smtp_server.messages == []


def test_eml_names_are_safe_and_distinct(tmp_path: Path) -> None:
    app = make_app(tmp_path, MAIL_DEFAULT_SENDER="desk@supportwidget.test")
    for msg_id in ["<../../evil/x@y>", "<__..__evil_x@y>", "<a/b@c>", "<a_b@c>"]:
        send_one(app, msg_id)
    written = sorted((tmp_path / "mail").iterdir())
    assert len(written) == 4
    assert all(path.suffix == ".eml" for path in written)
    assert not (tmp_path / "evil").exists()


def test_concurrent_sends_all_arrive(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            send_one(app, f"<notification-{n}@supportwidget.test>")
        except BaseException as error:  # collected so the test fails with it
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    ids = {received["Message-ID"] for received in smtp_server.wait_for(8)}
    assert ids == {f"<notification-{n}@supportwidget.test>" for n in range(8)}


def test_record_messages_sees_sent_mail(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    app = make_app(tmp_path, **smtp_server.config())
    with mail.record_messages() as outbox:
        send_one(app)
    assert [message.msgId for message in outbox] == ["<notification-7@supportwidget.test>"]


LEAN_CASES = [
    # (subject, reply-to): plain ASCII; a long French subject that folds as encoded words;
    # a German sender name in Reply-To; no subject at all.
    ("[SUP-12] Menu broken — Acme Shop / acme.test", None),
    (
        "[SUP-4071] Le menu déroulant ne s'affiche plus sur la page « Réservations » après "
        "la mise à jour — Café Élysée / réservations.café-élysée.fr",
        None,
    ),
    ("[SUP-9] Kontaktformular", "Jürgen Größe <juergen@example.com>"),
    ("", "plain@example.com"),
]


@pytest.mark.parametrize(("subject", "reply_to"), LEAN_CASES)
def test_lean_message_keeps_every_header_and_part_byte_for_byte(
    tmp_path: Path, subject: str, reply_to: str | None
) -> None:
    # Staff and requesters must see exactly what Flask-Mail's own message said, in one
    # multipart/alternative instead of two nested multiparts.
    app = make_app(tmp_path, MAIL_DEFAULT_SENDER="Support desk <support@agency.test>")
    root = "<SUP-12.1a2b3c4d@support.test>"
    fields = {
        "subject": subject,
        "recipients": ["elodie@example.fr" if reply_to else "owner@acme.test"],
        "body": "Bonjour Élodie,\n\nnous avons bien reçu votre demande.\n" * 20,
        "html": "<p>Bonjour <b>Élodie</b>,</p><p>nous avons bien reçu votre demande.</p>" * 20,
        "reply_to": reply_to,
        "extra_headers": {"References": root, "In-Reply-To": root},
    }
    with app.app_context():
        flask_mail = Message(**fields)
        flask_mail.msgId = "<n7.SUP-12.1a2b3c4d@support.test>"
        lean = LeanMessage("<n7.SUP-12.1a2b3c4d@support.test>", **fields)
        flask_mail.date = lean.date = 1_796_000_000.0
        old, new = flask_mail._message(), lean._message()
        old_bytes, new_bytes = old.as_bytes(), lean.as_bytes()
    assert new.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in old.walk()][1:] == [
        "multipart/alternative", "text/plain", "text/html",
    ]  # fmt: skip

    def head(raw: bytes) -> list[bytes]:
        lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        return [line for line in lines if not line.startswith((b"Content-Type", b" boundary"))]

    assert head(new_bytes) == head(old_bytes)
    old_parts = [p.as_bytes(policy=email.policy.SMTP) for p in old.walk() if not p.is_multipart()]
    new_parts = [p.as_bytes(policy=email.policy.SMTP) for p in new.walk() if not p.is_multipart()]
    assert new_parts == old_parts
    parsed = email.message_from_bytes(new_bytes, policy=email.policy.default)
    assert parsed["Subject"] == " ".join(subject.split()) or not subject
    assert "nous avons bien reçu" in parsed.get_body(("plain",)).get_content()


def test_lean_message_with_a_screenshot_is_flask_mails_own(tmp_path: Path) -> None:
    app = make_app(tmp_path, MAIL_DEFAULT_SENDER="support@agency.test")
    with app.app_context():
        lean = LeanMessage("<n1@support.test>", "Shot", ["a@example.com"], "text", "<p>html</p>")
        lean.attach("screenshot.png", "image/png", PNG)
        parsed = email.message_from_bytes(lean.as_bytes(), policy=email.policy.default)
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "image/png",
    ]  # fmt: skip
    assert parsed["Message-ID"] == "<n1@support.test>"
