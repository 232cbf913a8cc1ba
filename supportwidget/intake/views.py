"""Public pages: the widget loader, the hosted forms, the requester's status page."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from supportwidget.emergencies import paging as emergencies
from supportwidget.emergencies.state import emergency_state
from supportwidget.intake import identity, widget
from supportwidget.intake.forms import (
    EmergencyForm,
    ReplyForm,
    RequestForm,
    StandardRequestForm,
    form_strings,
)
from supportwidget.models import Site, Ticket, db, utcnow
from supportwidget.notify import outbox
from supportwidget.platform import errors, i18n, kept, limits, screenshots, tokens
from supportwidget.platform.errors import agency_contact, error_response
from supportwidget.sla import schedules as sla
from supportwidget.tickets import conversation
from supportwidget.tickets import filing as tickets
from supportwidget.vocab import MAX_SCREENSHOTS, EmergencyCategory

bp = Blueprint("hosted", __name__)
log = logging.getLogger(__name__)
# The database or the upload folder failing at submit: tell the requester, keep their text.
UNAVAILABLE = (SQLAlchemyError, OSError)


def _emergency_limit() -> str:
    return current_app.config["EMERGENCY_RATE_LIMIT"]


def _site_key() -> str:
    return (request.view_args or {}).get("site_key", "")


def _site_and_address() -> str:
    """Count per site and client address together: a stranger locks out only themselves."""
    return f"{_site_key()}/{get_remote_address()}"


def _filed(response: Response) -> bool:
    """Count only emergencies actually filed, not forms sent back with errors."""
    return response.status_code == 200


def _verified_identity() -> bool:
    """Tell whether the form carries the site's signed-in user, verified (never raises)."""
    try:
        meta = json.loads(request.form.get("page_meta") or "{}")
        site = Site.find_by_key(_site_key())
    except (ValueError, RecursionError, HTTPException):
        return False
    except SQLAlchemyError:
        db.session.rollback()  # the view meets the database failure itself, and says so
        return False
    return (
        isinstance(meta, dict) and site is not None and bool(identity.verified_identity(site, meta))
    )


def _flood(limit: RequestLimit) -> None:
    """Tell staff, once an hour per site, that an address hit the emergency limit."""
    emergencies.report_flood(_site_key(), request.remote_addr or "unknown")


# The emergency form: the hosted forms' per-address limit, but the site's own signed-in user
# (the CMS vouches for them) is never locked out of it.
emergency_public_form = limits.limiter.limit(
    limits.public_form_limit, methods=["POST"], exempt_when=_verified_identity
)
# Emergencies page people at night: at most a few per site and client address.
emergency_limit = limits.limiter.limit(
    _emergency_limit,
    key_func=_site_and_address,
    methods=["POST"],
    deduct_when=_filed,
    on_breach=_flood,
    exempt_when=_verified_identity,
)


@bp.after_app_request
def tell_staff_if_limits_fail_open(response: Response) -> Response:
    """Log, and e-mail staff at most once an hour, while rate limits fail open."""
    if limits.failing_open():
        hour = utcnow().strftime("%Y-%m-%dT%H")
        try:
            if outbox.tell_staff_once(f"limits-down:{hour}", "staff_limits_down", "limits-down"):
                log.error("rate limits are failing open: their store is unreachable")
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("could not tell staff that rate limits fail open")
    return response


def load_site(site_key: str) -> Site:
    """Return the enabled site for a key; 404 for unknown keys, 403 for disabled sites."""
    site = Site.find_by_key(site_key)
    if site is None:
        abort(404, gettext("There is no support form at this address. Please check the link."))
    if not site.enabled:
        abort(
            403,
            gettext("Support requests for this site are switched off. Please contact the agency."),
        )
    return site


def framed(response: Response, site: Site) -> Response:
    """Allow only the site's own origins to frame a form page."""
    origins = " ".join(o for o in site.allowed_origins if o.startswith(("https://", "http://")))
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        f"script-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
        f"frame-ancestors 'self' {origins}".strip()
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def page(template: str, site: Site, status: int = 200, **context: Any) -> Response:
    """Render a hosted page with its security headers."""
    embedded = request.args.get("embed") == "1"
    config = {
        "allowedOrigins": site.allowed_origins,
        "maxBytes": current_app.config["MAX_SCREENSHOT_BYTES"],
        "maxFiles": MAX_SCREENSHOTS,
        "embedded": embedded,
        # form.js speaks the page's language: its messages come from the catalogs.
        "strings": form_strings(),
    }
    html = render_template(
        template,
        site=site,
        client=site.client,
        embedded=embedded,
        # "<" escaped: an origin containing "</script>" must not end the script element.
        widget_config=json.dumps(config).replace("<", "\\u003c"),
        **context,
    )
    return framed(Response(html, status=status), site)


def keeps_input(view: Callable[..., Response]) -> Callable[..., Response]:
    """Answer 503 with the requester's text when the database, disk or image decoder fails."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except UNAVAILABLE:
            log.exception("could not file a request at %s", request.path)
            db.session.rollback()
            return kept_input_page(503, "unavailable")
        except screenshots.Busy:
            log.warning("image decoding busy: asked the requester to retry %s", request.path)
            return kept_input_page(503, "busy")

    return wrapper


def kept_input_page(status: int, reason: str) -> Response:
    """Tell the requester nothing was sent and why, with everything they typed kept."""
    html = render_template(
        "hosted/unavailable.html",
        reason=reason,
        fields=[(k, v) for k, v in request.form.items(multi=True)],
        had_files=any(f.filename for f in request.files.getlist("screenshots")),
        contact=agency_contact(),
    )
    response = frameable(Response(html, status=status))
    if status == 503:
        response.headers["Retry-After"] = "60"
    return response


def frameable(response: Response) -> Response:
    """Let a page that echoes only the sender's own text be shown inside the widget anywhere."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors *"
    )
    return response


@bp.errorhandler(413)
def too_large(exc: HTTPException) -> Response:
    """Explain a refused oversized request inside the widget too (the body was never read)."""
    return frameable(error_response(413, errors.too_large()))


@bp.errorhandler(429)
def too_many_requests(exc: HTTPException) -> Response:
    """Refuse a request over the rate limit, keeping its text and giving the agency's contact."""
    return kept_input_page(429, "limited")


@bp.get("/widget.js")
def widget_js() -> ResponseReturnValue:
    """Serve the loader script minified, in every language, cacheable for an hour."""
    script = widget.served_script()
    response = Response(script.body, mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    response.set_etag(script.etag)
    response.headers["Access-Control-Allow-Origin"] = "*"
    # If-None-Match with the ETag: 304, no body.
    return response.make_conditional(request)


@bp.get("/s/<site_key>/widget.json")
def widget_settings(site_key: str) -> Response:
    """Tell the loader whether its form can open here, with the site's look and contacts.

    A refusal (unknown key, switched off, an origin the site does not allow) is readable from
    any origin: it names no more than the key's owner already knows, and lets the widget say
    why instead of showing a broken frame. The site's own settings go to its origins only.
    """
    config = current_app.config
    about: dict[str, Any] = {"phone": config["AGENCY_PHONE"], "email": config["AGENCY_EMAIL"]}
    site = Site.find_by_key(site_key)
    origin = request.headers.get("Origin")
    reason = widget.refusal(site, origin)
    if reason or site is None:
        response = jsonify(ok=False, reason=reason, **about)
        response.status_code = 404 if site is None else 403
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        response = jsonify(ok=True, label=site.label, color=site.color, **about)
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/s/<site_key>", methods=["GET", "POST"])
@limits.public_form
@keeps_input
def standard_form(site_key: str) -> Response:
    """Show the standard-request form and file the ticket it submits."""
    site = load_site(site_key)
    form = StandardRequestForm(site.site_key)
    if not form.is_submitted():
        return page("hosted/standard.html", site, form=form)
    if not form.validate():
        return page("hosted/standard.html", site, status=refused(form), form=form)
    ticket = tickets.open_standard_request(site, request_from(site, form))
    form.forget_screenshots()
    return answer(ticket)


@bp.route("/s/<site_key>/emergency", methods=["GET", "POST"])
@emergency_public_form
@emergency_limit
@keeps_input
def emergency_form(site_key: str) -> Response:
    """Show the emergency form and page the on-call team for what it submits."""
    site = load_site(site_key)
    needs_consent = emergencies.needs_billing_consent(site)
    form = EmergencyForm(site.site_key, needs_consent)
    if not form.is_submitted():
        return page("hosted/emergency.html", site, form=form, needs_consent=needs_consent)
    if not form.validate():
        return page(
            "hosted/emergency.html",
            site,
            status=refused(form),
            form=form,
            needs_consent=needs_consent,
        )
    category = form.category.data
    site_check = emergencies.check_site(site) if category == EmergencyCategory.OFFLINE else None
    if emergencies.needs_confirmation(category, site_check, request.form.get("confirmed") == "1"):
        form.keep_screenshots()
        # 409, not 200: nothing was filed, so it does not count against the emergency limit.
        return page(
            "hosted/emergency.html",
            site,
            status=409,
            form=form,
            needs_consent=needs_consent,
            site_check=site_check,
        )
    ticket = emergencies.open_emergency(
        site,
        request_from(site, form),
        category=category,
        callback_phone=form.callback_phone.data or None,
        billing_consent=bool(form.billing_consent.data),
        answer=form.category_answer(),
        site_check=site_check,
    )
    form.forget_screenshots()
    return answer(ticket)


def refused(form: RequestForm) -> int:
    """Keep a refused request's screenshots; return 400 for a bad token, else 422."""
    if form.form_token.errors:
        return 400
    form.keep_screenshots()
    return 422


@bp.get("/s/<site_key>/kept/<shot>")
def kept_screenshot(site_key: str, shot: str) -> Response:
    """Show a kept screenshot to the holder of its form token (the thumbnail after a 422)."""
    try:
        nonce = tokens.read_form_token(request.args.get("token", ""), site_key)
    except tokens.TokenError:
        abort(404)
    found = kept.read(current_app.config["UPLOAD_FOLDER"], nonce, shot)
    if found is None:
        abort(404)
    response = Response(found[0], mimetype=found[1])
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def request_from(site: Site, form: RequestForm) -> tickets.Request:
    """Turn a validated form into the workflow's request, checking any signed identity."""
    meta = form.page_details()
    signed = identity.verified_identity(site, meta)
    if isinstance(meta.get("user"), dict):
        meta["user"].pop("signature", None)
    return tickets.Request(
        subject=form.subject.data,
        description=form.description.data,
        name=form.name.data,
        email=form.email.data,
        needed_by=getattr(form, "needed_by", None) and form.needed_by.data,
        urgency_note=getattr(form, "urgency_note", None) and form.urgency_note.data,
        page_meta=meta,
        screenshots=form.cleaned_screenshots,
        nonce=form.nonce,
        identity_verified=signed is not None
        and signed.email == form.email.data.strip().lower()
        and signed.name == form.name.data.strip(),
        # Later e-mails to the requester are written in the language they filed in.
        locale=i18n.current_language(),
    )


@bp.post("/s/<site_key>/identity")
def check_identity(site_key: str) -> Response:
    """Tell the form page whether the widget's signed user is genuine (to lock the fields)."""
    site = load_site(site_key)
    data = request.get_json(silent=True) or {}
    signed = identity.verified_identity(site, {"user": data if isinstance(data, dict) else {}})
    if signed is None:
        return jsonify(verified=False)
    # "My requests": the site vouches for this person, so their own tickets may be listed.
    mine = [
        {
            "reference": ticket.reference,
            "subject": ticket.subject,
            "status": i18n.status_name(ticket.status),
            "url": "/t/" + tokens.status_token(ticket.id),
        }
        for ticket in identity.recent_requests(site, signed.email)
    ]
    return jsonify(verified=True, requests=mine)


def answer(ticket: Ticket) -> Response:
    """Render the confirmation: reference, summary, expected timeframe."""
    return page(
        "hosted/answer.html",
        ticket.site,
        ticket=ticket,
        expectation=sla.expectation(ticket),
        emergency=emergency_state(ticket),
        status_url="/t/" + tokens.status_token(ticket.id),
    )


def ticket_for(token: str) -> Ticket:
    """Return the ticket a status link names, or 404."""
    try:
        ticket = db.session.get(Ticket, tokens.read_status_token(token))
    except tokens.TokenError:
        ticket = None
    if ticket is None:
        abort(404, gettext("This status link is not valid. Please use the link from your e-mail."))
    return ticket


@bp.route("/t/<token>", methods=["GET", "POST"])
@limits.public_form
@keeps_input
def status_page(token: str) -> Response:
    """Show a requester their conversation on one ticket and take their reply, no login."""
    ticket = ticket_for(token)
    # Without an explicit ?locale=, show the page in the language the request was filed in.
    with i18n.language(i18n.explicit_locale() or ticket.locale or i18n.current_language()):
        form = ReplyForm(ticket.id)
        status = 200
        if form.is_submitted():
            if form.validate():
                conversation.client_reply(
                    ticket,
                    form.body.data,
                    ticket.requester_email,
                    "status link",
                    via="status page",
                    screenshots=form.cleaned_screenshots,
                    once=f"reply:{form.nonce}",
                )
                return Response(status=303, headers={"Location": request.path + "?sent=1#reply"})
            status = 400 if form.form_token.errors else 422
        html = render_template(
            "hosted/status.html",
            ticket=ticket,
            zone=sla.ticket_zone(ticket),
            thread=conversation.public_thread(ticket),
            expectation=sla.expectation(ticket),
            emergency=emergency_state(ticket),
            form=form,
            sent=request.args.get("sent") == "1",
        )
    response = Response(html, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response
