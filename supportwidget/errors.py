"""Error pages: JSON for the API and webhooks, HTML for people; never a bare 500."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from .models import db

JSON_PREFIXES = ("/api/", "/webhooks/", "/healthz")


def error_response(status: int, message: str | None = None) -> Response:
    """Return an error as JSON or as a page, depending on who asked."""
    title = HTTP_STATUS_CODES.get(status, "Error")
    if request.path.startswith(JSON_PREFIXES):
        response = jsonify(error=title, message=message or title)
    else:
        response = Response(render_template("error.html", title=title, message=message))
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    message = exc.description if exc.description and "<" not in exc.description else None
    response = error_response(exc.code or 500, message)
    if exc.code == 413:
        response = error_response(413, "The upload is too large. Please attach smaller files.")
    if exc.code == 429:
        response = error_response(429, too_many_requests())
    # Keep what the error itself says about the resource (Allow on 405, WWW-Authenticate).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def agency_contact() -> str:
    """Return how to reach the agency directly ('+44 … or help@…'), or ''."""
    cfg = current_app.config
    return " or ".join(w for w in (cfg.get("AGENCY_PHONE"), cfg.get("AGENCY_EMAIL")) if w)


def too_many_requests() -> str:
    """Explain a rate limit and give the agency's direct contact for real emergencies."""
    text = "Too many requests from here in a short time. Please wait a little and try again."
    if agency_contact():
        text += f" If your website is down or hacked, contact us directly: {agency_contact()}."
    return text


def _server_error(exc: Exception) -> Response:
    db.session.rollback()
    return error_response(500, "Something went wrong on our side. Nothing was saved.")


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(500, _server_error)
