"""Error pages: JSON for the API and webhooks, HTML for people; never a bare 500."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext, lazy_gettext
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from supportwidget.models import db

JSON_PREFIXES = ("/api/", "/webhooks/", "/healthz")
# Titles of the error pages a requester can meet; JSON errors keep Werkzeug's English.
PAGE_TITLES = {
    400: lazy_gettext("Bad Request"),
    403: lazy_gettext("Forbidden"),
    404: lazy_gettext("Not Found"),
    405: lazy_gettext("Method Not Allowed"),
    413: lazy_gettext("Request Entity Too Large"),
    422: lazy_gettext("Unprocessable Entity"),
    429: lazy_gettext("Too Many Requests"),
    500: lazy_gettext("Internal Server Error"),
    503: lazy_gettext("Service Unavailable"),
}


class Error(BaseModel):
    """An error, as the JSON API, the webhooks and /healthz answer one."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="HTTP status phrase.")
    message: str = Field(description="What went wrong, for people.")


def error_response(status: int, message: str | None = None, reason: str | None = None) -> Response:
    """Return an error as JSON (with a machine-readable reason, if any) or as a page."""
    title = HTTP_STATUS_CODES.get(status, "Error")
    if request.path.startswith(JSON_PREFIXES):
        body = Error(error=title, message=message or title).model_dump(mode="json")
        # A machine-readable cause for a caller that acts on it (the WordPress plugin's
        # heartbeat, which is not part of the staff API document).
        response = jsonify({**body, "reason": reason} if reason else body)
    else:
        title = str(PAGE_TITLES.get(status, title))
        response = Response(render_template("error.html", title=title, message=message))
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    message = exc.description if exc.description and "<" not in exc.description else None
    if exc.code == 413 and not request.path.startswith(JSON_PREFIXES):
        message = too_large()
    if exc.code == 429:
        message = too_many_requests()
    response = error_response(exc.code or 500, message)
    # Keep what the error itself says about the resource (Allow on 405, WWW-Authenticate).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def agency_contact() -> str:
    """Return how to reach the agency directly ('+44 … or help@…'), or ''."""
    cfg = current_app.config
    ways = [w for w in (cfg["AGENCY_PHONE"], cfg["AGENCY_EMAIL"]) if w]
    if len(ways) == 2:
        return gettext("%(phone)s or %(email)s", phone=ways[0], email=ways[1])
    return ways[0] if ways else ""


def too_large() -> str:
    """Explain to a person that what they sent is over the size limit, naming it."""
    return gettext(
        "Your request is too large (over %(size)s MB). Please attach fewer or smaller files "
        "and send it again.",
        size=(request.max_content_length or 0) // 2**20,
    )


def too_many_requests() -> str:
    """Explain a rate limit and give the agency's direct contact for real emergencies."""
    text = gettext(
        "Too many requests from here in a short time. Please wait a little and try again."
    )
    if agency_contact():
        text += " " + gettext(
            "If your website is down or hacked, contact us directly: %(contact)s.",
            contact=agency_contact(),
        )
    return text


def _server_error(exc: Exception) -> Response:
    db.session.rollback()
    return error_response(500, gettext("Something went wrong on our side. Nothing was saved."))


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(500, _server_error)
