"""Inbound paths to acknowledge emergencies: Vonage webhooks and one-time links."""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, render_template, request

from . import emergencies, outbox, tickets
from .models import HandledMessage, Notification, Staff, db, parse_id
from .sms import verify_signature

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)
ACK = re.compile(r"^\s*ack\b(?:\s*(?:sup-?)?\s*(\d+))?", re.IGNORECASE)


def signed_params() -> dict[str, str]:
    """Return the webhook's parameters if Vonage signed them recently; else abort 4xx."""
    params = request.values.to_dict()
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict):  # a JSON list or number is no Vonage webhook: unsigned, so 403
        params.update({k: str(v) for k, v in body.items()})
    secret = current_app.config.get("VONAGE_SIGNATURE_SECRET")
    if not secret:
        log.error("VONAGE_SIGNATURE_SECRET is not set: refusing an unsigned webhook")
        abort(403, "Webhook signatures are not configured on this service.")
    method = current_app.config.get("VONAGE_SIGNATURE_METHOD") or "md5hash"
    if not verify_signature(params, secret, method, max_age=300):
        abort(403, "Invalid or stale signature.")
    return params


def first_receipt(key: str) -> None:
    """Mark a webhook message id as handled; abort 409 when it was already (a replay).

    The mark joins the transaction of the work it guards: if that work fails (a locked
    database), nothing is marked and Vonage's retry of the same message is handled.
    """
    if not HandledMessage.first_time(key):
        abort(409, "This message was already received.")


def handled() -> Response:
    """Commit the receipt's mark with whatever it did, and tell Vonage it arrived."""
    db.session.commit()
    return Response(status=204)


@bp.route("/webhooks/vonage/inbound", methods=["GET", "POST"])
def inbound_sms() -> Response:
    """Acknowledge an emergency from a staff member's 'ACK 12' reply."""
    params = signed_params()
    first_receipt("in:" + (params.get("messageId") or params.get("sig", "")))
    member = db.session.scalar(
        sa.select(Staff).where(Staff.phone == "+" + params.get("msisdn", ""))
    )
    match = ACK.match(params.get("text", ""))
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
def delivery_receipt() -> Response:
    """Store an SMS delivery receipt; a failed delivery counts as not paged."""
    params = signed_params()
    status = params.get("status", "").lower()
    first_receipt(
        f"dlr:{params.get('messageId', '')}:{status}:{params.get('message-timestamp', '')}"
    )
    row = None
    if (row_id := parse_id(params.get("client-ref"))) is not None:
        row = db.session.get(Notification, row_id)
    if row is None and params.get("messageId"):
        row = db.session.scalar(
            sa.select(Notification).where(Notification.provider_id == params["messageId"])
        )
    if row is None:
        return handled()
    outbox.record_delivery(row, status, f"Vonage err-code {params.get('err-code', '?')}")
    return handled()


@bp.route("/a/<code>", methods=["GET", "POST"])
def acknowledge_link(code: str) -> str | tuple[str, int]:
    """Acknowledge from the link in a page; GET only asks, so link previews cannot ack."""
    try:
        found = emergencies.read_ack_code(code)
    except emergencies.AckLinkExpired as expired:
        return render_template("acknowledge_expired.html", ticket=expired.ticket), 410
    if found is None:
        abort(404, "This acknowledgement link is not valid.")
    ticket, member = found
    done = False
    if request.method == "POST":
        done = emergencies.acknowledge(ticket, member, via="link")
        db.session.refresh(ticket)
    return render_template("acknowledge.html", ticket=ticket, member=member, done=done)
