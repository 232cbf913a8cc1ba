"""Security headers on every response, and trusted proxy headers when configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, abort, current_app, request
from flask_babel import gettext
from werkzeug.middleware.proxy_fix import ProxyFix

View = TypeVar("View", bound=Callable[..., Any])
FORM_OR_JSON = ("application/x-www-form-urlencoded", "application/json")

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


def small_body(max_bytes: int, types: tuple[str, ...] = FORM_OR_JSON) -> Callable[[View], View]:
    """Mark a view that takes only a small body of these types, refused before it is parsed."""

    def mark(view: View) -> View:
        view.__dict__["body_rule"] = (max_bytes, types)  # read back by getattr below
        return view

    return mark


def size_text(size: int) -> str:
    """Return a byte count as people write limits: 64 KiB, 64 MiB."""
    return f"{size // 2**20} MiB" if size >= 2**20 else f"{size // 2**10} KiB"


def refuse_unexpected_bodies() -> None:
    """Refuse a body over the limit (413) or of a type the view does not take (415), unread."""
    view = current_app.view_functions.get(request.endpoint or "")
    max_bytes, types = getattr(view, "body_rule", (None, None))
    if max_bytes is not None:
        request.max_content_length = max_bytes  # a chunked body stops being read at the limit
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        abort(413, f"Request bodies here are limited to {size_text(limit)}.")
    has_body = bool(request.content_length) or "Transfer-Encoding" in request.headers
    if types and has_body and request.mimetype not in types:
        abort(415, f"Only {' or '.join(types)} bodies are accepted here.")


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
    # First: nothing may read a body before its size and type are checked.
    app.before_request(refuse_unexpected_bodies)
    app.before_request(refuse_nul_characters)
    app.after_request(add_security_headers)
    proxies = int(app.config["PROXY_COUNT"])
    if proxies:
        # Flask documents wrapping wsgi_app in middleware; its annotations declare a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
