"""Inbound paths to acknowledge emergencies: Vonage webhooks and one-time links."""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, jsonify, render_template, request

from supportwidget.emergencies import calls, links
from supportwidget.emergencies import paging as emergencies
from supportwidget.emergencies.state import emergency_state
from supportwidget.models import HandledMessage, Notification, Staff, db, parse_id
from supportwidget.notify import outbox
from supportwidget.notify.channels import vonage, vonage_calls
from supportwidget.platform.security import small_body
from supportwidget.tickets import filing as tickets

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)
# A Vonage callback is a few hundred bytes; anything bigger is not worth parsing.
WEBHOOK_MAX_BYTES = 64 * 1024
ACK = re.compile(r"^\s*ack\b(?:\s*(?:sup-?)?\s*(\d+))?", re.IGNORECASE)


def first_receipt(key: str, digest: str) -> None:
    """Mark a webhook message and its signed payload as handled; abort 409 on a replay.

    The mark joins the transaction of the work it guards: if that work fails (a locked
    database), nothing is marked and Vonage's retry of the same message is handled.
    """
    for mark in (key, "signed:" + digest):
        if not HandledMessage.first_time(mark):
            abort(409, "This message was already received.")


def handled() -> Response:
    """Commit the receipt's mark with whatever it did, and tell Vonage it arrived."""
    db.session.commit()
    return Response(status=204)


@bp.route("/webhooks/vonage/inbound", methods=["GET", "POST"])
@small_body(WEBHOOK_MAX_BYTES)
def inbound_sms() -> Response:
    """Acknowledge an emergency from a staff member's 'ACK 12' reply."""
    message = vonage.inbound_sms(vonage.signed_params())
    first_receipt("in:" + message.message_id, message.digest)
    # A disabled person can no longer take an emergency, by SMS or otherwise.
    member = db.session.scalar(sa.select(Staff).where(Staff.phone == message.sender, Staff.active))
    match = ACK.match(message.text)
    if member is None or match is None:
        log.info("inbound SMS ignored (unknown sender or not an ACK)")
        return handled()
    ticket = (
        tickets.find_by_reference(match.group(1))
        if match.group(1)
        else emergencies.latest_open_emergency_for(member)
    )
    if ticket is not None:
        emergencies.acknowledge(ticket, member, via="sms")
    return handled()


@bp.route("/webhooks/vonage/status", methods=["GET", "POST"])
@small_body(WEBHOOK_MAX_BYTES)
def delivery_receipt() -> Response:
    """Store an SMS delivery receipt; a failed delivery counts as not paged."""
    receipt = vonage.delivery_receipt(vonage.signed_params())
    first_receipt(f"dlr:{receipt.message_id}:{receipt.status}:{receipt.timestamp}", receipt.digest)
    row = None
    if (row_id := parse_id(receipt.client_ref)) is not None:
        row = db.session.get(Notification, row_id)
    if row is None:
        row = db.session.scalar(
            sa.select(Notification).where(Notification.provider_id == receipt.message_id)
        )
    if row is None:
        return handled()
    outbox.record_delivery(row, receipt.status, f"Vonage err-code {receipt.error_code}")
    return handled()


def voice_call() -> tuple[vonage_calls.VoiceCallback, Notification]:
    """Return a signed voice callback and the call it is about; 403, 404 or 409 otherwise."""
    callback = vonage_calls.signed_callback()
    row = calls.call_row(parse_id(request.args.get("call")))
    if row is None:
        abort(404, "There is no such call.")
    if row.provider_id and callback.uuid and callback.uuid != row.provider_id:
        abort(403, "This callback is about another call.")
    if not HandledMessage.first_time("voice:" + callback.signature_id):
        abort(409, "This callback was already received.")
    return callback, row


def said(ncco: list[dict[str, Any]]) -> Response:
    """Commit what the callback did, and tell Vonage what the call says next."""
    db.session.commit()
    return jsonify(ncco)


@bp.post("/webhooks/vonage/voice/answer")
@small_body(WEBHOOK_MAX_BYTES, ("application/json",))
def voice_answer() -> Response:
    """Say the page to a member of staff who picked up, and wait for "1"."""
    _, row = voice_call()
    return said(calls.answer_script(row))


@bp.post("/webhooks/vonage/voice/input")
@small_body(WEBHOOK_MAX_BYTES, ("application/json",))
def voice_input() -> Response:
    """Acknowledge the emergency when the person called pressed 1, exactly like "ACK"."""
    callback, row = voice_call()
    return said(calls.pressed(row, callback.digits))


@bp.post("/webhooks/vonage/voice/event")
@small_body(WEBHOOK_MAX_BYTES, ("application/json",))
def voice_event() -> Response:
    """Put a call's outcome (answered, busy, no answer, failed, rejected) on the timeline."""
    callback, row = voice_call()
    calls.record_outcome(row, callback.status)
    return handled()


@bp.route("/a/<code>", methods=["GET", "POST"])
def acknowledge_link(code: str) -> str | tuple[str, int]:
    """Acknowledge from the link in a page; GET only asks, so link previews cannot ack."""
    try:
        found = links.read_ack_code(code)
    except links.AckLinkExpired as expired:
        return render_template("acknowledge_expired.html", ticket=expired.ticket), 410
    if found is None:
        abort(404, "This acknowledgement link is not valid.")
    ticket, member = found
    done = False
    if request.method == "POST":
        done = emergencies.acknowledge(ticket, member, via="link")
        db.session.refresh(ticket)
    return render_template(
        "acknowledge.html",
        ticket=ticket,
        member=member,
        done=done,
        emergency=emergency_state(ticket),
    )
