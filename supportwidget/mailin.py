"""Mail-in: an MTA pipes one message in; replies thread onto tickets, clients open new ones."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import messages, outbox, tickets, updates
from .models import Client, HandledMessage, Ticket, db, parse_id
from .screenshots import MAX_SCREENSHOTS, Screenshot, Upload, clean_uploads, screen_uploads

log = logging.getLogger(__name__)
EX_TEMPFAIL = 75  # sysexits.h: the MTA keeps the message and tries again later
MAX_MESSAGE_BYTES = 30 * 1024 * 1024
SUBJECT_REF = re.compile(r"\[SUP-(\d+)\]", re.IGNORECASE)
QUOTE_HEADER = re.compile(
    r"^(On .{4,200} wrote:|-----\s*Original Message\s*-----|_{20,})\s*$", re.IGNORECASE
)
LOOP_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|bounces?)[@+-]", re.IGNORECASE)


def thread_ids(msg: EmailMessage) -> list[int]:
    """Return ticket numbers named by our own Message-IDs in In-Reply-To and References."""
    suffix = messages.root_message_id(0).split("SUP-0", 1)[1].rstrip(">")
    ours = re.compile(r"<(?:n\d+\.)?SUP-(\d+)" + re.escape(suffix) + ">", re.IGNORECASE)
    found = []
    for header in ("In-Reply-To", "References"):
        found += ours.findall(str(msg.get(header, "")))
    return [n for n in map(parse_id, found) if n is not None]


def find_thread(msg: EmailMessage, sender: str) -> Ticket | None:
    """Return the ticket this message answers, if its sender is that ticket's requester."""
    numbers = thread_ids(msg)
    # Another system's [SUP-20241231001] is no ticket of ours (and no database error).
    numbers += [n for n in map(parse_id, SUBJECT_REF.findall(str(msg.get("Subject", "")))) if n]
    for number in dict.fromkeys(numbers):
        ticket = db.session.get(Ticket, number)
        # A [SUP-n] is easy to forge: only the requester may add to a ticket by e-mail.
        if ticket is not None and ticket.requester_email.strip().lower() == sender:
            return ticket
    return None


def body_text(msg: EmailMessage) -> str:
    """Return the message's text, preferring plain text; HTML is reduced to text."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):
        text = part.get_payload(decode=True).decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = html.unescape(
            re.sub(r"<[^>]*>", " ", re.sub(r"(?is)<(script|style).*?</\1>", "", text))
        )
    return text.strip()


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
        Upload.named(part.get_filename(), part.get_payload(decode=True) or b"")
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
    ours = parseaddr(str(current_app.config.get("MAIL_DEFAULT_SENDER") or ""))[1].lower()
    return (
        auto != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or "X-Autoreply" in msg
        or "List-Id" in msg
        or bool(LOOP_SENDERS.match(sender))
        or sender == ours
    )


def open_ticket(client: Client, msg: EmailMessage, sender: str, name: str, key: str) -> str:
    """File a standard request from a client contact's new message."""
    site = next((s for s in client.sites if s.enabled), None)
    if site is None:
        return refuse(msg, sender, key)
    subject = " ".join(str(msg.get("Subject", "")).split())[:150]
    request = tickets.Request(
        subject=subject if len(subject) >= 3 else f"E-mail from {name or sender}"[:150],
        description=body_text(msg)[: updates.MAX_BODY] or "(empty message)",
        name=(name or sender)[:120],
        email=sender,
        page_meta={"source": "e-mail"},
        screenshots=screenshots(msg),
        nonce=key,
    )
    ticket = tickets.open_standard_request(site, request)
    return f"opened {ticket.reference}"


def refuse(msg: EmailMessage, sender: str, key: str) -> str:
    """Queue a polite refusal to an unknown sender; create nothing else."""
    if not HandledMessage.first_time(key):
        return "duplicate"
    subject = " ".join(str(msg.get("Subject", "")).split())[:200]
    row = messages.notice(
        "mailin_refused", sender, "mailin-refused", subject=subject, sender=sender
    )
    db.session.commit()
    outbox.schedule([row])
    return "refused"


def handle(raw: bytes) -> str:
    """Process one message; return what happened (for the log)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    name, sender = parseaddr(str(msg.get("From", "")))
    sender = sender.strip().lower()
    if "@" not in sender or len(sender) > 254 or len(getaddresses([str(msg.get("From", ""))])) != 1:
        return "dropped: no usable From address"
    # First: an out-of-office reply quoting "[SUP-1]" must not reopen the ticket.
    if is_automatic(msg, sender):
        return "dropped: automatic message"
    key = "mail:" + hashlib.sha256(str(msg.get("Message-ID") or raw).encode()).hexdigest()[:40]
    ticket = find_thread(msg, sender)
    if ticket is not None:
        if not HandledMessage.first_time(key):
            return "duplicate"
        updates.client_reply(ticket, without_quote(body_text(msg)), sender)
        return f"reply added to {ticket.reference}"
    client = client_for(sender)
    if client is not None:
        if tickets.find_by_nonce(key) is not None:
            return "duplicate"
        return open_ticket(client, msg, sender, name, key)
    return refuse(msg, sender, key)


@click.command("mail-in")
@with_appcontext
def mail_in_command() -> None:
    """Read one RFC 822 message on stdin (an MTA pipe) and thread it onto the desk."""
    raw = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
    if len(raw) > MAX_MESSAGE_BYTES:
        click.echo("mail-in: message too large; dropped", err=True)
        return
    try:
        outcome = handle(raw)
    except IntegrityError:
        # Two deliveries of one message raced: the other one has it.
        db.session.rollback()
        outcome = "duplicate"
    except DBAPIError as exc:
        db.session.rollback()
        click.echo(f"mail-in: database unavailable, try again later: {exc}", err=True)
        raise SystemExit(EX_TEMPFAIL) from exc
    except Exception as exc:
        # Unknown trouble: keep the message at the MTA rather than lose it.
        db.session.rollback()
        log.exception("mail-in failed")
        click.echo(f"mail-in: failed, try again later: {exc}", err=True)
        raise SystemExit(EX_TEMPFAIL) from exc
    log.info("mail-in: %s", outcome)
    click.echo(f"mail-in: {outcome}")
