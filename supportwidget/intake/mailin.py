"""Mail-in: an MTA pipes one message in; replies thread onto tickets, clients open new ones.

With MAILIN_AUTHSERV_ID set, only senders our MTA authenticated may thread, reopen or
open; mail that would have done so from anyone else is held for staff to accept or drop,
and nobody unauthenticated gets an answer (no backscatter to forged addresses).
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from dataclasses import dataclass
from email import policy
from email.errors import MessageError
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

import sqlalchemy as sa
from flask import current_app

from supportwidget.intake import mailauth
from supportwidget.intake.mailauth import Verdict
from supportwidget.models import Client, HandledMessage, HeldMessage, Staff, Ticket, db, parse_id
from supportwidget.notify import messages, outbox
from supportwidget.platform import plaintext
from supportwidget.platform.screenshots import (
    Screenshot,
    Upload,
    clean_uploads,
    screen_uploads,
)
from supportwidget.tickets import actions as updates
from supportwidget.tickets import conversation
from supportwidget.tickets import filing as tickets
from supportwidget.vocab import MAX_SCREENSHOTS

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 30 * 1024 * 1024
SUBJECT_REF = re.compile(r"\[SUP-(\d+)\]", re.IGNORECASE)
QUOTE_HEADER = re.compile(
    r"^(On .{4,200} wrote:|-----\s*Original Message\s*-----|_{20,})\s*$", re.IGNORECASE
)
LOOP_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|bounces?)[@+-]", re.IGNORECASE)
NOT_VERIFIED = "not verified"


class Unfileable(ValueError):
    """A message that can never be filed, however often it is delivered: bounce it."""


@dataclass(frozen=True)
class Incoming:
    """One message and what we know of its sender."""

    raw: bytes
    msg: EmailMessage
    address: str
    name: str
    key: str
    # Our MTA's judgement, or None when MAILIN_AUTHSERV_ID is not set (nobody checked).
    verdict: Verdict | None
    accepted_by: str | None = None

    @property
    def trusted(self) -> bool:
        """Tell whether this message may thread, reopen or open a ticket."""
        return self.verdict is None or self.verdict.authenticated or self.accepted_by is not None

    @property
    def answerable(self) -> bool:
        """Tell whether an automatic answer may go to the sender (no backscatter)."""
        return self.verdict is None or self.verdict.authenticated

    @property
    def evidence(self) -> str:
        """Return what our MTA said about the sender, for the staff who decide."""
        return self.verdict.evidence if self.verdict else NOT_VERIFIED

    @property
    def sender_check(self) -> str:
        """Say how the sender was checked, for the ticket's timeline."""
        if self.accepted_by is not None:
            return f"accepted by {self.accepted_by}"
        return "authenticated" if self.verdict and self.verdict.authenticated else NOT_VERIFIED


def parse(raw: bytes) -> EmailMessage:
    """Parse a message; raise Unfileable for one too large or too deeply nested to read."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Unfileable(f"message too large (over {MAX_MESSAGE_BYTES // 2**20} MiB)")
    try:
        return BytesParser(policy=policy.default).parsebytes(raw)
    except RecursionError as exc:
        raise Unfileable("MIME parts nested too deeply") from exc


def sender_of(msg: EmailMessage) -> tuple[str, str] | None:
    """Return the From address (lower case) and display name, or None when there is none.

    Raise Unfileable when the header cannot be read, or its address holds control
    characters: no retry can make it usable, so the MTA should bounce it.
    """
    try:
        header = str(msg.get("From", ""))
    except (MessageError, ValueError, LookupError, IndexError) as exc:  # header parse errors
        raise Unfileable(f"unreadable From header ({exc})") from exc
    name, address = parseaddr(header)
    address = address.strip().lower()
    if not plaintext.is_one_line(address):
        raise Unfileable("unreadable From header (control characters in the address)")
    if "@" not in address or len(address) > 254 or len(getaddresses([header])) != 1:
        return None
    return address, plaintext.one_line(name)[:120]


def thread_ids(msg: EmailMessage) -> list[int]:
    """Return ticket numbers named by our own Message-IDs in In-Reply-To and References."""
    suffix = messages.root_message_id(0).split("SUP-0", 1)[1].rstrip(">")
    ours = re.compile(r"<(?:n\d+\.)?SUP-(\d+)" + re.escape(suffix) + ">", re.IGNORECASE)
    found = []
    for header in ("In-Reply-To", "References"):
        found += ours.findall(str(msg.get(header, "")))
    return [n for n in map(parse_id, found) if n is not None]


def named_tickets(msg: EmailMessage) -> list[Ticket]:
    """Return the tickets a message names, by our Message-IDs first, then by [SUP-n]."""
    numbers = thread_ids(msg)
    # Another system's [SUP-20241231001] is no ticket of ours (and no database error).
    numbers += [n for n in map(parse_id, SUBJECT_REF.findall(subject_of(msg))) if n]
    found = (db.session.get(Ticket, number) for number in dict.fromkeys(numbers))
    return [ticket for ticket in found if ticket is not None]


def find_thread(msg: EmailMessage, sender: str) -> Ticket | None:
    """Return the ticket this message answers, if its sender is that ticket's requester."""
    for ticket in named_tickets(msg):
        # A [SUP-n] is easy to forge: only the requester may add to a ticket by e-mail.
        if ticket.requester_email.strip().lower() == sender:
            return ticket
    return None


def staff_sender(sender: str) -> Staff | None:
    """Return the active staff member who sent a message, if one did."""
    return db.session.scalar(
        sa.select(Staff).where(sa.func.lower(Staff.email) == sender, Staff.active)
    )


def subject_of(msg: EmailMessage) -> str:
    """Return the message's subject on one line (it may have been encoded with line breaks)."""
    return plaintext.one_line(str(msg.get("Subject", "")))


def body_text(msg: EmailMessage) -> str:
    """Return the message's text, preferring plain text; HTML is reduced to text."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):
        text = payload_bytes(part).decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = html.unescape(
            re.sub(r"<[^>]*>", " ", re.sub(r"(?is)<(script|style).*?</\1>", "", text))
        )
    return plaintext.without_controls(text).strip()


def payload_bytes(part: Message) -> bytes:
    """Return a part's decoded content as bytes (empty when it has none, or is multipart)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def without_quote(text: str) -> str:
    """Drop the quoted earlier message under a reply, which staff already have."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if number and QUOTE_HEADER.match(line.strip()):
            lines = lines[:number]
            break
    while lines and (not lines[-1].strip() or lines[-1].startswith(">")):
        lines.pop()
    return "\n".join(lines).strip() or text.strip()


def screenshots(msg: EmailMessage) -> list[Screenshot]:
    """Return attached images re-encoded, within the hosted form's limits; others are dropped."""
    images = [
        Upload.named(part.get_filename(), payload_bytes(part))
        for part in msg.iter_attachments()
        if part.get_content_maintype() == "image"
    ][:MAX_SCREENSHOTS]
    config = current_app.config
    limit, budget = config["MAX_SCREENSHOT_BYTES"], config["MAX_PIXELS_PER_REQUEST"]
    accepted, refused = screen_uploads(images, limit, budget)
    shots, unreadable = clean_uploads(accepted, limit, budget)
    for problem in refused + unreadable:
        log.info("mail-in: attachment skipped: %s", problem)
    return shots


def client_for(sender: str) -> Client | None:
    """Return the client that lists this address among its contacts."""
    for client in db.session.scalars(sa.select(Client).order_by(Client.id)):
        if sender in (e.strip().lower() for e in client.emails or []):
            return client
    return None


def is_automatic(msg: EmailMessage, sender: str) -> bool:
    """Return whether the message is a bounce, auto-reply or list mail: never answer those."""
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    ours = parseaddr(str(current_app.config["MAIL_DEFAULT_SENDER"] or ""))[1].lower()
    return (
        auto != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or "X-Autoreply" in msg
        or "List-Id" in msg
        or bool(LOOP_SENDERS.match(sender))
        or sender == ours
    )


def judge(msg: EmailMessage, sender: str) -> Verdict | None:
    """Return our MTA's verdict on the sender, or None when MAILIN_AUTHSERV_ID is not set."""
    authserv_id = str(current_app.config.get("MAILIN_AUTHSERV_ID") or "").strip()
    if not authserv_id:
        return None
    headers = [str(value) for value in msg.get_all("Authentication-Results") or []]
    return mailauth.verdict(headers, authserv_id, sender)


def open_ticket(client: Client, mail: Incoming) -> str:
    """File a standard request from a client contact's new message."""
    site = next((s for s in client.sites if s.enabled), None)
    if site is None:
        return refuse(mail)
    if tickets.find_by_nonce(mail.key) is not None:
        return "duplicate"
    subject = subject_of(mail.msg)[:150]
    request = tickets.Request(
        subject=subject if len(subject) >= 3 else f"E-mail from {mail.name or mail.address}"[:150],
        description=body_text(mail.msg)[: updates.MAX_BODY] or "(empty message)",
        name=(mail.name or mail.address)[:120],
        email=mail.address,
        page_meta={"source": "e-mail"},
        screenshots=screenshots(mail.msg),
        nonce=mail.key,
        sender_check=mail.sender_check,
    )
    ticket = tickets.open_standard_request(site, request)
    return f"opened {ticket.reference}"


def add_reply(ticket: Ticket, mail: Incoming) -> str:
    """Add the requester's message to their ticket, once however often it is delivered."""
    if not HandledMessage.first_time(mail.key):
        return "duplicate"
    body = without_quote(body_text(mail.msg))
    conversation.client_reply(
        ticket, body, mail.address, mail.sender_check, screenshots=screenshots(mail.msg)
    )
    return f"reply added to {ticket.reference}"


def add_staff_reply(ticket: Ticket, staff: Staff, mail: Incoming) -> str:
    """Send a staff member's e-mailed answer to the requester through the ticket, once.

    Exactly what the dashboard's reply does: the first response is stamped and the
    requester gets it from the support address, threaded on their ticket.
    """
    if not HandledMessage.first_time(mail.key):
        return "duplicate"
    body = without_quote(body_text(mail.msg))
    if not body:
        db.session.rollback()
        return f"dropped: empty staff reply to {ticket.reference}"
    updates.reply(ticket, staff, body, via="e-mail", sender_check=mail.sender_check)
    return f"staff reply by {staff.email} sent on {ticket.reference}"


def refuse(mail: Incoming) -> str:
    """Queue a polite refusal to an unknown but authenticated sender; create nothing else."""
    if not mail.answerable:
        return "dropped: sender not authenticated, and not a requester or client contact"
    if not HandledMessage.first_time(mail.key):
        return "duplicate"
    # The notice repeats none of the sender's words: the address may not be theirs.
    row = messages.notice("mailin_refused", mail.address, "mailin-refused", sender=mail.address)
    db.session.commit()
    outbox.schedule([row])
    return "refused"


def already_seen(key: str) -> bool:
    """Tell whether a message is held, or was filed, refused or dropped before."""
    held = db.session.scalar(sa.select(HeldMessage.id).where(HeldMessage.key == key))
    handled = db.session.get(HandledMessage, key[:100])
    return held is not None or handled is not None or tickets.find_by_nonce(key) is not None


def hold(mail: Incoming, target: str) -> str:
    """Keep an unauthenticated message for staff to accept or drop; act on nothing."""
    if already_seen(mail.key):
        return "duplicate"
    db.session.add(
        HeldMessage(
            key=mail.key,
            sender=mail.address,
            sender_name=mail.name,
            subject=subject_of(mail.msg)[:200],
            preview=body_text(mail.msg)[:2000],
            target=target,
            evidence=mail.evidence[:500],
            raw=mail.raw,
        )
    )
    db.session.commit()
    return f"held for staff: {target}"


def route(mail: Incoming) -> str:
    """Thread, open, hold or refuse one message; return what happened."""
    ticket = find_thread(mail.msg, mail.address)
    if ticket is not None:
        return (
            add_reply(ticket, mail) if mail.trusted else hold(mail, f"reply to {ticket.reference}")
        )
    staff = staff_sender(mail.address)
    tickets_named = named_tickets(mail.msg) if staff is not None else []
    if staff is not None and tickets_named:
        ticket = tickets_named[0]
        if not mail.trusted:
            return hold(mail, f"staff reply to {ticket.reference}")
        return add_staff_reply(ticket, staff, mail)
    client = client_for(mail.address)
    if client is not None:
        return (
            open_ticket(client, mail)
            if mail.trusted
            else hold(mail, f"new ticket for {client.name}")
        )
    return refuse(mail)


def message_key(msg: EmailMessage, raw: bytes) -> str:
    """Return the key that makes a redelivery of the same message a duplicate."""
    return "mail:" + hashlib.sha256(str(msg.get("Message-ID") or raw).encode()).hexdigest()[:40]


def handle(raw: bytes) -> str:
    """Process one message; return what happened (for the log)."""
    msg = parse(raw)
    sender = sender_of(msg)
    if sender is None:
        return "dropped: no usable From address"
    address, name = sender
    # First: an out-of-office reply quoting "[SUP-1]" must not reopen the ticket.
    if is_automatic(msg, address):
        return "dropped: automatic message"
    return route(Incoming(raw, msg, address, name, message_key(msg, raw), judge(msg, address)))


def accept_held(held: HeldMessage, staff: Staff) -> str:
    """File a held message exactly as if its sender had been authenticated."""
    msg = parse(held.raw)
    mail = Incoming(
        held.raw,
        msg,
        held.sender,
        held.sender_name,
        held.key,
        Verdict(False, held.evidence),
        accepted_by=staff.name,
    )
    # A statement, not session.delete: a second click racing this one must not fail.
    db.session.execute(sa.delete(HeldMessage).where(HeldMessage.id == held.id))
    outcome = route(mail)
    db.session.commit()
    log.info("mail-in: held message %s accepted by %s: %s", held.key, staff.email, outcome)
    return outcome


def drop_held(held: HeldMessage, staff: Staff) -> None:
    """Throw a held message away unfiled; the MTA's redelivery of it is not held again."""
    HandledMessage.first_time(held.key)
    db.session.execute(sa.delete(HeldMessage).where(HeldMessage.id == held.id))
    db.session.commit()
    log.info("mail-in: held message %s from %s dropped by %s", held.key, held.sender, staff.email)
