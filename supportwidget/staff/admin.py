"""Admin pages: clients and contracts, sites and embeds, SLA plans, staff."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from supportwidget.models import Client, Site, SlaPlan, Staff, db, parse_id
from supportwidget.platform.limits import limiter
from supportwidget.staff import accounts, lifecycle
from supportwidget.staff.accounts import AccountError
from supportwidget.staff.auth import admin_required, signed_in_staff
from supportwidget.vocab import StaffRole
from supportwidget.watch import settings as watch_settings

bp = Blueprint("admin", __name__, url_prefix="/dashboard/admin")
COLOR = re.compile(r"^#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?$")


def _lines(text: str | None) -> list[str]:
    return [item.strip() for item in re.split(r"[,\s]+", text or "") if item.strip()]


def save_client(client: Client, form: MultiDict[str, str]) -> None:
    """Apply the client form: name, contacts, contract and emergency rate."""
    name = accounts.client_name(form.get("name"), client)
    emails = accounts.contact_emails(_lines(form.get("emails")))
    rate = accounts.hourly_rate(form.get("hourly_rate"), "The hourly rate")
    accounts.set_contract(
        client, form.get("sla") or None, form.get("sla_start"), form.get("sla_end"),
        labels=("The contract start", "The contract end"),
    )  # fmt: skip
    client.name, client.emails, client.hourly_rate = name, emails, rate
    if "watch_form" in form:
        client.watch_notify = form.get("watch_notify") in ("y", "on")


def save_site(site: Site, form: MultiDict[str, str]) -> None:
    """Apply the site form: address, allowed origins, widget label and colour."""
    url = form.get("url", "").strip()
    origins = accounts.allowed_origins(url, _lines(form.get("origins")))
    label = form.get("label", "").strip() or None
    color = form.get("color", "").strip() or None
    if label and len(label) > 60:
        raise AccountError("The button label can be at most 60 characters.")
    if color and not COLOR.match(color):
        raise AccountError("The colour must be a hex colour like #0b5fff.")
    site.url, site.allowed_origins, site.label, site.color = url, origins, label, color
    site.name = accounts.site_name(form.get("name"), url)
    # An unticked checkbox is not sent at all: missing means switched off.
    site.enabled = form.get("enabled") in ("y", "on")
    if "watch_form" in form:
        save_watch(site, form)


def save_watch(site: Site, form: MultiDict[str, str]) -> None:
    """Apply the site form's uptime-watch fields, with the rules of `site watch`."""
    interval = form.get("watch_interval", "").strip()
    if interval and not (interval.isascii() and interval.isdigit() and len(interval) < 7):
        raise AccountError("Check every: a whole number of seconds.")
    try:
        watch_settings.configure(
            site,
            url=form.get("watch_url", ""),
            expect=form.get("watch_expect", ""),
            interval=int(interval) if interval else None,
            enabled=form.get("watch_enabled") in ("y", "on"),
        )
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    if not interval:
        site.watch_interval = None


def create_plan(form: MultiDict[str, str]) -> SlaPlan:
    """Add an SLA plan from the form, with the same rules as `sla add`."""
    return accounts.create_plan(
        form.get("name", ""),
        form.get("timezone", ""),
        form.get("hours", ""),
        form.get("holidays", "").strip() or None,
        _lines(form.get("holidays_extra")),
        (form.get("first_response"), form.get("resolution"), form.get("emergency_response")),
        holiday_label="A holiday",
    )


def save_staff(member: Staff, form: MultiDict[str, str], by: Staff) -> None:
    """Apply the staff form: phone, on-call flag and role."""
    phone = accounts.staff_phone(form.get("phone"), member)
    role = form.get("role", member.role)
    if role not in StaffRole.values():
        raise AccountError(f"The role must be {StaffRole.listing()}.")
    if member.id == by.id and role != StaffRole.ADMIN:
        raise AccountError("You cannot remove your own admin role; ask another admin.")
    member.phone, member.role = phone, role
    member.on_call = form.get("on_call") in ("y", "on")


PAGES: dict[str, tuple[str, Any]] = {
    "clients": ("dashboard/admin/clients.html", Client.name),
    "sites": ("dashboard/admin/sites.html", Site.name),
    "sla": ("dashboard/admin/sla.html", SlaPlan.name),
    "staff": ("dashboard/admin/staff.html", Staff.name),
}


def render_admin(page: str, error: str | None = None, status: int = 200, **extra: Any) -> Response:
    """Render one admin list page with its forms."""
    template, order = PAGES[page]
    html = render_template(
        template,
        items=db.session.scalars(sa.select(order.class_).order_by(order)).all(),
        clients=db.session.scalars(sa.select(Client).order_by(Client.name)).all(),
        plans=db.session.scalars(sa.select(SlaPlan).order_by(SlaPlan.name)).all(),
        embed_snippet=accounts.embed_snippet,
        error=error,
        form=request.form if error else {},
        **{"revealed": {}, **extra},
    )
    return Response(html, status=status)


@bp.get("/")
@admin_required
def index() -> Response:
    """Show the admin menu."""
    return Response(render_template("dashboard/admin/index.html"))


@bp.get("/<page>")
@admin_required
def list_page(page: str) -> Response:
    """Show clients, sites, SLA plans or staff."""
    if page not in PAGES:
        abort(404)
    return render_admin(page)


@bp.post("/sites/<id:item_id>/rotate-key")
@admin_required
def rotate_key(item_id: int) -> ResponseReturnValue:
    """Issue a new site key; embeds with the old key keep working for the grace period."""
    site = _load(Site, item_id)
    days = int(current_app.config["SITE_KEY_GRACE_DAYS"])
    site.rotate_key(timedelta(days=days))
    db.session.commit()
    flash(f"New key for {site.name}. The old key keeps working for {days} days: update the embed.")
    return redirect(url_for(".list_page", page="sites"), code=303)


@bp.post("/staff/invite")
@admin_required
def invite_staff() -> ResponseReturnValue:
    """Add a person and e-mail them a one-time set-password link."""
    form = request.form
    try:
        member, _link = lifecycle.invite(
            form.get("name", ""),
            form.get("email", ""),
            form.get("phone"),
            on_call=form.get("on_call") in ("y", "on"),
            admin=form.get("role") == StaffRole.ADMIN,
        )
    except AccountError as exc:
        db.session.rollback()
        return render_admin("staff", error=str(exc), status=422)
    flash(
        f"Invited {member.name}: a set-password link (valid 72 hours) "
        f"is on its way to {member.email}."
    )
    return redirect(url_for(".list_page", page="staff"), code=303)


@bp.post("/staff/<id:item_id>/active")
@admin_required
def toggle_staff(item_id: int) -> ResponseReturnValue:
    """Disable or enable a person (`active` = y or n); never one's own account."""
    member = _load(Staff, item_id)
    active = request.form.get("active") in ("y", "on")
    me = signed_in_staff()
    try:
        if member.id == me.id and not active:
            raise AccountError("You cannot disable yourself; ask another admin.")
        stopped = lifecycle.set_active(member, active)
    except AccountError as exc:
        db.session.rollback()
        return render_admin("staff", error=str(exc), status=422)
    if active:
        flash(f"{member.name} enabled.")
    else:
        flash(f"{member.name} disabled: signed out, {stopped} queued notification(s) withdrawn.")
    return redirect(url_for(".list_page", page="staff"), code=303)


@bp.post("/sites/<id:item_id>/secret")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@admin_required
def site_secret(item_id: int) -> Response:
    """Show a site's secret (a new one with `rotate`) once the admin re-entered their password."""
    site, me = _load(Site, item_id), signed_in_staff()
    if not me.check_password(request.form.get("password", "")):
        return render_admin(
            "sites", error="That is not your password: the secret stays hidden.", status=403
        )
    rotated = request.form.get("rotate") == "y"
    if rotated:
        accounts.rotate_secret(site)
        db.session.commit()
    response = render_admin("sites", revealed={site.id: (site.secret, rotated)})
    response.headers["Cache-Control"] = "no-store"
    return response


def _load(model: Any, item_id: int) -> Any:
    item = db.session.get(model, item_id)
    if item is None:
        abort(404, "That record does not exist.")
    return item


@bp.post("/<page>/<id:item_id>")
@bp.post("/<page>/new")
@admin_required
def save(page: str, item_id: int | None = None) -> ResponseReturnValue:
    """Create or update one record; show the list again with the reason if refused."""
    if page not in PAGES:
        abort(404)
    try:
        if page == "clients":
            item = _load(Client, item_id) if item_id else Client()
            save_client(item, request.form)
        elif page == "sites":
            item = _load(Site, item_id) if item_id else Site()
            if item_id is None:
                client_id = parse_id(request.form.get("client_id"))
                if client_id is None:
                    raise AccountError("Choose the client the site belongs to.")
                item.client = _load(Client, client_id)
            save_site(item, request.form)
        elif page == "sla":
            if item_id is not None:
                raise AccountError("Plans cannot be edited (tickets refer to them); add a new one.")
            item = create_plan(request.form)
        else:
            if item_id is None:
                raise AccountError("Invite staff with the form below, or `staff invite`.")
            item = _load(Staff, item_id)
            save_staff(item, request.form, signed_in_staff())
    except AccountError as exc:
        db.session.rollback()
        return render_admin(page, error=str(exc), status=422)
    db.session.add(item)
    db.session.commit()
    flash("Saved.")
    return redirect(url_for(".list_page", page=page), code=303)
