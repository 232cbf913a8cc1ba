"""A leaner Flask-Mail message: the same headers and parts a reader sees, built with less work.

Flask-Mail (0.10) makes a Message-ID in every Message (a host-name lookup and random bits)
that ours replaces, and wraps text and HTML in a multipart/mixed around a
multipart/alternative even with nothing attached: two multiparts, two boundaries, each
checked against the body by a regex compiled for it. Without attachments this builds the
one multipart/alternative; its parts and headers are Flask-Mail's own, byte for byte
(tests/test_mail.py compares them). With attachments it is Flask-Mail's message unchanged.
"""

from __future__ import annotations

from email import policy
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.utils import formatdate
from typing import Any

from flask import current_app
from flask_mail import Message, force_text, sanitize_address, sanitize_addresses, sanitize_subject


class LeanMessage(Message):
    """A Flask-Mail Message with a given Message-ID, one multipart when nothing is attached."""

    def __init__(
        self,
        msg_id: str,
        subject: str,
        recipients: list[str],
        body: str | None,
        html: str | None,
        reply_to: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        # Flask-Mail's __init__ without its make_msgid(): the same attributes, ours given.
        sender = current_app.extensions["mail"].default_sender
        if isinstance(sender, tuple):
            sender = f"{sender[0]} <{sender[1]}>"
        self.recipients = list(recipients)
        self.subject = subject
        self.sender = sender
        self.reply_to = reply_to
        self.cc, self.bcc = [], []
        self.body = body
        self.alts = {}
        self.html = html
        self.date = None
        self.msgId = msg_id
        self.charset = None
        self.extra_headers = extra_headers
        self.mail_options, self.rcpt_options = [], []
        self.attachments = []

    def _message(self) -> MIMEBase:
        """Return the MIME message: one multipart/alternative unless something is attached."""
        if self.attachments or not self.alts:
            return super()._message()
        msg = MIMEMultipart("alternative")
        msg.attach(self._mimetext(self.body, "plain"))
        for mimetype, content in self.alts.items():
            msg.attach(self._mimetext(content, mimetype))
        self._add_headers(msg)
        msg.policy = policy.SMTP
        return msg

    def _add_headers(self, msg: Any) -> None:
        """Set the headers exactly as Flask-Mail's _message() does, in its order."""
        encoding = self.charset or "utf-8"
        if self.subject:
            msg["Subject"] = sanitize_subject(force_text(self.subject), encoding)
        msg["From"] = sanitize_address(self.sender, encoding)
        msg["To"] = ", ".join(list(set(sanitize_addresses(self.recipients, encoding))))
        msg["Date"] = formatdate(self.date, localtime=True)
        msg["Message-ID"] = self.msgId
        if self.cc:
            msg["Cc"] = ", ".join(list(set(sanitize_addresses(self.cc, encoding))))
        if self.reply_to:
            msg["Reply-To"] = sanitize_address(self.reply_to, encoding)
        for key, value in (self.extra_headers or {}).items():
            msg[key] = value
