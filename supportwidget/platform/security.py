"""Security headers on every response, and trusted proxy headers when configured."""

from __future__ import annotations

from flask import Flask, Response, abort, current_app, request
from flask_babel import gettext
from werkzeug.middleware.proxy_fix import ProxyFix

# Pages that set no policy of their own may not be framed and load only from us.
DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)


def add_security_headers(response: Response) -> Response:
    """Set CSP, nosniff, referrer and transport headers unless a view chose its own."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Status and acknowledgement links carry secrets in the path: never leak them.
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
        headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure or current_app.config["PUBLIC_URL"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def refuse_nul_characters() -> None:
    """Answer 400 to text holding a NUL character: no text column (PostgreSQL's least of all)
    can store one, and no person types one."""
    for values in (request.args, request.form):
        if any("\x00" in value for _, value in values.items(multi=True)):
            abort(
                400, gettext("The text you sent contains a NUL character, which we cannot store.")
            )


def init_app(app: Flask) -> None:
    """Register the headers; trust X-Forwarded-* from PROXY_COUNT proxies (default none)."""
    app.before_request(refuse_nul_characters)
    app.after_request(add_security_headers)
    proxies = int(app.config["PROXY_COUNT"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
