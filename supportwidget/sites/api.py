"""POST /api/v1/heartbeat: the WordPress plugin's signed heartbeat (and its connection test)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from supportwidget.models import db
from supportwidget.platform.errors import error_response
from supportwidget.sites import heartbeats

bp = Blueprint("heartbeat", __name__, url_prefix="/api/v1")


@bp.post("/heartbeat")
def heartbeat() -> Response:
    """Take a site's signed heartbeat; with {"test": true}, only say what was verified."""
    # Read one byte more than allowed: a chunked body has no length to check first.
    too_large = (request.content_length or 0) > heartbeats.MAX_BYTES
    body = b"" if too_large else request.stream.read(heartbeats.MAX_BYTES + 1)
    if too_large or len(body) > heartbeats.MAX_BYTES:
        message = f"A heartbeat is at most {heartbeats.MAX_BYTES} bytes."
        return error_response(413, message, reason="too_large")
    try:
        received = heartbeats.receive(body, request.headers.get(heartbeats.SIGNATURE_HEADER))
    except heartbeats.HeartbeatError as exc:
        db.session.rollback()
        return error_response(exc.status, str(exc), reason=exc.reason)
    site = received.site
    answer = {
        "ok": True,
        "test": received.test,
        "site": site.name,
        "client": site.client.name,
        "verified": {"site_key": True, "secret": True, "clock_skew": received.clock_skew},
    }
    if not received.test:
        answer["core"] = received.core_status
        answer["ticket"] = received.ticket.reference if received.ticket else None
    return jsonify(answer)
