"""Admin pages: clients and contracts, sites and embeds, SLA plans, staff."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

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
from werkzeug.datastructures import MultiDict

from .auth import admin_required, current_staff
from .business_time import BusinessCalendar, format_hours, parse_duration, parse_hours
from .cli import embed_snippet
from .models import Client, Site, SlaPlan, Staff, db

bp = Blueprint("admin", __name__, url_prefix="/dashboard/admin")
COLOR = re.compile(r"^#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+\d{7,15}$")


class AdminError(ValueError):
    """An admin change that cannot be saved; says why."""


def _date(value: str | None, label: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError as exc:
        raise AdminError(f"{label} must be a date like 2026-12-31.") from exc


def _origin(url: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AdminError(f"{url!r} is not an http(s) address.")
    return f"{parsed.scheme}://{parsed.netloc}"


def _lines(text: str | None) -> list[str]:
    return [item.strip() for item in re.split(r"[,\s]+", text or "") if item.strip()]


def save_client(client: Client, form: MultiDict[str, str]) -> None:
    """Apply the client form: name, contacts, contract and emergency rate."""
    name = form.get("name", "").strip()
    if not name or len(name) > 120:
        raise AdminError("A client needs a name of at most 120 characters.")
    other = db.session.scalar(sa.select(Client).where(Client.name == name, Client.id != client.id))
    if other is not None:
        raise AdminError(f"A client named {name!r} already exists.")
    emails = [e.lower() for e in _lines(form.get("emails"))]
    if not emails or not all(EMAIL.match(e) for e in emails):
        raise AdminError("Give at least one valid contact e-mail (separate several by commas).")
    plan = None
    if form.get("sla"):
        plan = db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == form["sla"]))
        if plan is None:
            raise AdminError(f"There is no SLA plan named {form['sla']!r}.")
    start, end = _date(form.get("sla_start"), "Start"), _date(form.get("sla_end"), "End")
    if start and end and end < start:
        raise AdminError("The contract ends before it starts.")
    rate = None
    if form.get("hourly_rate", "").strip():
        try:
            rate = Decimal(form["hourly_rate"].strip())
        except InvalidOperation as exc:
            raise AdminError("The hourly rate must be a number like 120 or 95.50.") from exc
        if not rate.is_finite() or rate < 0 or rate >= Decimal("100000000"):
            raise AdminError("The hourly rate must be a positive amount.")
    client.name, client.emails, client.sla_plan = name, emails, plan
    client.sla_start, client.sla_end, client.hourly_rate = start, end, rate


def save_site(site: Site, form: MultiDict[str, str]) -> None:
    """Apply the site form: address, allowed origins, widget label and colour."""
    url = form.get("url", "").strip()
    origins = sorted({_origin(url), *(_origin(o) for o in _lines(form.get("origins")))})
    label = form.get("label", "").strip() or None
    color = form.get("color", "").strip() or None
    if label and len(label) > 60:
        raise AdminError("The button label can be at most 60 characters.")
    if color and not COLOR.match(color):
        raise AdminError("The colour must be a hex colour like #0b5fff.")
    site.url, site.allowed_origins, site.label, site.color = url, origins, label, color
    site.name = form.get("name", "").strip()[:200] or urlparse(url).netloc
    site.enabled = form.get("enabled", "y") in ("y", "on")


def create_plan(form: MultiDict[str, str]) -> SlaPlan:
    """Build an SLA plan with the same checks as `sla add`."""
    name = form.get("name", "").strip()
    if not name or len(name) > 80:
        raise AdminError("A plan needs a name of at most 80 characters.")
    if db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == name)):
        raise AdminError(f"An SLA plan named {name!r} already exists.")
    extra = [_date(d, "Holiday") for d in _lines(form.get("holidays_extra"))]
    country = form.get("holidays", "").strip() or None
    try:
        weekly = parse_hours(form.get("hours", ""))
        BusinessCalendar(form.get("timezone", ""), weekly, country, extra)
        minutes = [
            int(parse_duration(form[key]).total_seconds() // 60) if form.get(key) else None
            for key in ("first_response", "resolution", "emergency_response")
        ]
    except (ValueError, KeyError) as exc:
        raise AdminError(str(exc)) from exc
    if minutes[0] is None or minutes[1] is None:
        raise AdminError("Give both the first-response and the resolution target, e.g. 4h, 16h.")
    return SlaPlan(
        name=name,
        timezone=form["timezone"],
        hours=format_hours(weekly),
        holiday_country=country,
        extra_holidays=[d.isoformat() for d in extra if d],
        first_response_minutes=minutes[0],
        resolution_minutes=minutes[1],
        emergency_response_minutes=minutes[2],
    )


def save_staff(member: Staff, form: MultiDict[str, str], by: Staff) -> None:
    """Apply the staff form: phone, on-call flag and role."""
    phone = form.get("phone", "").strip() or None
    if phone and not PHONE.match(phone):
        raise AdminError(f"The phone must be in E.164 form like +447700900123, not {phone!r}.")
    taken = phone and db.session.scalar(
        sa.select(Staff).where(Staff.phone == phone, Staff.id != member.id)
    )
    if taken:
        raise AdminError(f"{phone} already belongs to {taken.name}.")
    role = form.get("role", member.role)
    if role not in ("agent", "admin"):
        raise AdminError("The role must be agent or admin.")
    if member.id == by.id and role != "admin":
        raise AdminError("You cannot remove your own admin role; ask another admin.")
    member.phone, member.role = phone, role
    member.on_call = form.get("on_call") in ("y", "on")


PAGES: dict[str, tuple[str, Any]] = {
    "clients": ("dashboard/admin/clients.html", Client.name),
    "sites": ("dashboard/admin/sites.html", Site.name),
    "sla": ("dashboard/admin/sla.html", SlaPlan.name),
    "staff": ("dashboard/admin/staff.html", Staff.name),
}


def render_admin(page: str, error: str | None = None, status: int = 200) -> Response:
    """Render one admin list page with its forms."""
    template, order = PAGES[page]
    html = render_template(
        template,
        items=db.session.scalars(sa.select(order.class_).order_by(order)).all(),
        clients=db.session.scalars(sa.select(Client).order_by(Client.name)).all(),
        plans=db.session.scalars(sa.select(SlaPlan).order_by(SlaPlan.name)).all(),
        embed_snippet=embed_snippet,
        error=error,
        form=request.form if error else {},
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


@bp.post("/sites/<int:item_id>/rotate-key")
@admin_required
def rotate_key(item_id: int) -> Response:
    """Issue a new site key; embeds with the old key keep working for the grace period."""
    site = _load(Site, item_id)
    days = int(current_app.config.get("SITE_KEY_GRACE_DAYS", 14))
    site.rotate_key(timedelta(days=days))
    db.session.commit()
    flash(f"New key for {site.name}. The old key keeps working for {days} days: update the embed.")
    return redirect(url_for(".list_page", page="sites"), code=303)


def _load(model: Any, item_id: int) -> Any:
    item = db.session.get(model, item_id)
    if item is None:
        abort(404, "That record does not exist.")
    return item


@bp.post("/<page>/<int:item_id>")
@bp.post("/<page>/new")
@admin_required
def save(page: str, item_id: int | None = None) -> Response:
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
                client_id = request.form.get("client_id", "")
                if not client_id.isdigit():
                    raise AdminError("Choose the client the site belongs to.")
                item.client = _load(Client, int(client_id))
            save_site(item, request.form)
        elif page == "sla":
            if item_id is not None:
                raise AdminError("Plans cannot be edited (tickets refer to them); add a new one.")
            item = create_plan(request.form)
        else:
            if item_id is None:
                raise AdminError("Add staff with `flask --app supportwidget staff add`.")
            item = _load(Staff, item_id)
            save_staff(item, request.form, current_staff())
    except AdminError as exc:
        db.session.rollback()
        return render_admin(page, error=str(exc), status=422)
    db.session.add(item)
    db.session.commit()
    flash("Saved.")
    return redirect(url_for(".list_page", page=page), code=303)
