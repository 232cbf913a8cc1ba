"""Staff sign-in: password login, session checks, roles and CSRF for the dashboard."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

from supportwidget.models import Staff, db
from supportwidget.platform.limits import limiter
from supportwidget.staff import lifecycle
from supportwidget.staff.accounts import AccountError

bp = Blueprint("auth", __name__, url_prefix="/dashboard")
csrf = CSRFProtect()
# Public forms carry their own signed token, webhooks are signed, the API uses bearer tokens.
# Heartbeats are signed by the site's secret.
CSRF_EXEMPT_BLUEPRINTS = frozenset({"hosted", "webhooks", "api", "heartbeat", "demo"})
STAFF_BLUEPRINTS = frozenset({"auth", "dashboard", "admin", "billing", "sites"})
CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

View = TypeVar("View", bound=Callable[..., Any])
_STAFF_KEY = "supportwidget.staff"


def current_staff() -> Staff | None:
    """Return the signed-in staff member, or None when the session is absent or revoked."""
    # Cached in the request's WSGI environ, not on g: an app context can outlive one request.
    if _STAFF_KEY not in request.environ:
        member = None
        staff_id, version = session.get("staff_id"), session.get("session_version")
        if isinstance(staff_id, int) and isinstance(version, int):
            member = db.session.get(Staff, staff_id)
            if member is None or not member.active or member.session_version != version:
                member = None
        request.environ[_STAFF_KEY] = member
    return request.environ[_STAFF_KEY]


def signed_in_staff() -> Staff:
    """Return the signed-in staff member of a view behind login_required (401 otherwise)."""
    member = current_staff()
    if member is None:
        abort(401, "Sign in first.")
    return member


def login_required(view: View) -> View:
    """Send anonymous visitors to the sign-in page."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_staff() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(View, wrapped)


def admin_required(view: View) -> View:
    """Allow admins only; agents get 403."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        member = current_staff()
        if member is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not member.is_admin:
            abort(403, "This page is for admins only.")
        return view(*args, **kwargs)

    return cast(View, wrapped)


@functools.cache
def _dummy_hash(method: str) -> str:
    """Return a hash to check when the e-mail is unknown, so both paths take as long."""
    return generate_password_hash("not-a-real-password", method=method)


def hash_token(token: str) -> str:
    """Return how an API token is stored (tokens are random, so SHA-256 suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _safe_next(target: str | None) -> str:
    """Return a local dashboard path to go to after sign-in, never another site."""
    parsed = urlparse(target or "")
    if parsed.scheme or parsed.netloc or not parsed.path.startswith("/dashboard"):
        return url_for("dashboard.queue")
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def authenticate(email: str, password: str) -> Staff | None:
    """Return the active staff member with this e-mail and password, or None."""
    member = db.session.scalar(sa.select(Staff).where(Staff.email == email.strip().lower()))
    if member is None or not member.password_hash or not member.active:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return None
    return member if member.check_password(password) else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Any:
    """Show the sign-in form and start a session for valid credentials."""
    if request.method == "GET":
        return render_template("dashboard/login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "")
    member = authenticate(email, request.form.get("password", ""))
    if member is None:
        page = render_template(
            "dashboard/login.html",
            error="That e-mail and password do not match a staff account.",
            email=email,
            next=request.form.get("next", ""),
        )
        return page, 401
    session.clear()
    session["staff_id"] = member.id
    session["session_version"] = member.session_version
    return redirect(_safe_next(request.form.get("next")), code=303)


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def accept_invite(token: str) -> Any:
    """Let an invited person choose a password (`password`) once, then sign them in."""
    try:
        member = lifecycle.invited(token)
    except AccountError as exc:
        return render_template("dashboard/invite.html", member=None, error=str(exc)), 410
    if request.method == "GET":
        return render_template("dashboard/invite.html", member=member)
    try:
        lifecycle.accept(token, request.form.get("password", ""))
    except AccountError as exc:
        db.session.rollback()
        return render_template("dashboard/invite.html", member=member, error=str(exc)), 422
    session.clear()
    session["staff_id"] = member.id
    session["session_version"] = member.session_version
    return redirect(url_for("dashboard.queue"), code=303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session everywhere: bumping the version revokes every copy of the cookie."""
    member = current_staff()
    if member is not None:
        member.session_version += 1
        db.session.commit()
    session.clear()
    return redirect(url_for("auth.login"), code=303)


def _check_csrf() -> None:
    if not current_app.config["WTF_CSRF_ENABLED"]:
        return
    if request.blueprint in CSRF_EXEMPT_BLUEPRINTS or not request.endpoint:
        return
    csrf.protect()


def _staff_headers(response: Response) -> Response:
    """Lock staff pages down: no framing, no inline code, never cached."""
    if request.blueprint in STAFF_BLUEPRINTS:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _forget_request_state(exc: BaseException | None = None) -> None:
    """Drop Flask-WTF's per-request token cache from g: an app context can span requests."""
    g.pop(current_app.config["WTF_CSRF_FIELD_NAME"], None)
    g.pop("csrf_valid", None)


def init_app(app: Flask) -> None:
    """Bind CSRF protection, session cookie settings and the staff template helper."""
    # CSRFProtect's own hook would check blueprints registered after us (the API) too:
    # check by blueprint name at request time instead.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if urlparse(app.config.get("PUBLIC_URL") or "").scheme == "https":
        app.config["SESSION_COOKIE_SECURE"] = True
    csrf.init_app(app)
    app.before_request(_check_csrf)
    app.after_request(_staff_headers)
    app.teardown_request(_forget_request_state)

    @app.context_processor
    def staff_context() -> dict[str, Any]:
        return {"current_staff": current_staff}
