"""Clients, sites, staff and SLA plans: the rules the command line and the admin pages share."""

from __future__ import annotations

import re
import secrets
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

import sqlalchemy as sa

from supportwidget.models import Client, Site, SlaPlan, Staff, db
from supportwidget.notify.messages import public_url
from supportwidget.sla.business_time import (
    BusinessCalendar,
    format_hours,
    parse_duration,
    parse_hours,
)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+\d{7,15}$")
MAX_RATE = Decimal("100000000")


class AccountError(ValueError):
    """A change to a client, site, staff member or plan that cannot be saved; says why."""


def parse_date(value: str | None, label: str) -> date | None:
    """Return an ISO date, or None for an empty value."""
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise AccountError(f"{label} must be a date like 2026-12-31, not {value!r}.") from exc


def find_plan(name: str) -> SlaPlan:
    """Return the SLA plan of that name."""
    plan = db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == name))
    if plan is None:
        raise AccountError(f"No SLA plan named {name!r}. Create it with `sla add`.")
    return plan


def client_name(name: str | None, client: Client | None = None) -> str:
    """Return a client's name: given, at most 120 characters, not another client's."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise AccountError("A client needs a name of at most 120 characters.")
    query = sa.select(Client.id).where(Client.name == name)
    if client is not None and client.id is not None:
        query = query.where(Client.id != client.id)
    if db.session.scalar(query) is not None:
        raise AccountError(f"A client named {name!r} already exists.")
    return name


def site_name(name: str | None, url: str) -> str:
    """Return a site's display name: as given (at most 200 characters), else the URL's host."""
    name = (name or "").strip()
    if len(name) > 200:
        raise AccountError("A site name can be at most 200 characters.")
    return name or urlparse(url.strip()).netloc


def staff_identity(name: str | None, email: str | None) -> tuple[str, str]:
    """Return a new staff member's name and e-mail: both given, the address plausible
    (they receive every ticket and page) and not already a staff member's."""
    name, email = (name or "").strip(), (email or "").strip().lower()
    if not name or len(name) > 120:
        raise AccountError("A staff member needs a name of at most 120 characters.")
    if not EMAIL.match(email) or len(email) > 254:
        raise AccountError(f"{email!r} is not a valid e-mail address.")
    if db.session.scalar(sa.select(Staff.id).where(Staff.email == email)) is not None:
        raise AccountError(f"A staff member with e-mail {email!r} already exists.")
    return name, email


def contact_emails(emails: list[str]) -> list[str]:
    """Return client contact addresses, lower-cased; at least one, each plausible."""
    cleaned = [e.strip().lower() for e in emails if e.strip()]
    if not cleaned or not all(EMAIL.match(e) for e in cleaned):
        raise AccountError("Give at least one valid contact e-mail.")
    return cleaned


def set_contract(
    client: Client,
    plan_name: str | None,
    start: str | None,
    end: str | None,
    labels: tuple[str, str] = ("--sla-start", "--sla-end"),
) -> None:
    """Attach an SLA contract (a plan and optional dates), or remove it without a plan."""
    plan = find_plan(plan_name) if plan_name else None
    first, last = parse_date(start, labels[0]), parse_date(end, labels[1])
    if first and last and last < first:
        raise AccountError(f"{labels[1]} is before {labels[0]}.")
    client.sla_plan, client.sla_start, client.sla_end = plan, first, last


def hourly_rate(text: str | None, label: str = "--hourly-rate") -> Decimal | None:
    """Return the emergency hourly rate, or None when none is given."""
    if text is None or not text.strip():
        return None
    try:
        rate = Decimal(text.strip())
    except InvalidOperation as exc:
        raise AccountError(f"{label} must be a number like 120 or 95.50, not {text!r}.") from exc
    if not rate.is_finite() or rate < 0 or rate >= MAX_RATE:
        raise AccountError(f"{label} must be a positive amount, not {text!r}.")
    return rate


def origin_of(url: str) -> str:
    """Return the origin (scheme://host[:port]) of an http(s) address."""
    try:
        parsed = urlparse(url.strip())
    except ValueError:  # e.g. "https://[x": an unclosed IPv6 bracket
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AccountError(f"{url!r} is not an http(s) address.")
    return f"{parsed.scheme}://{parsed.netloc}"


def allowed_origins(url: str, origins: list[str]) -> list[str]:
    """Return the origins that may embed the widget: the site's own plus any listed."""
    return sorted({origin_of(url), *(origin_of(o) for o in origins)})


def staff_phone(phone: str | None, member: Staff | None = None) -> str | None:
    """Return a valid, unused E.164 mobile number, or None for none."""
    phone = (phone or "").strip() or None
    if phone is None:
        return None
    if not PHONE.match(phone):
        raise AccountError(f"The phone must be in E.164 form like +447700900123, not {phone!r}.")
    query = sa.select(Staff).where(Staff.phone == phone)
    if member is not None and member.id is not None:
        query = query.where(Staff.id != member.id)
    taken = db.session.scalar(query)
    if taken is not None:
        raise AccountError(f"{phone} already belongs to {taken.name}.")
    return phone


def create_plan(
    name: str,
    timezone: str,
    hours: str,
    holidays: str | None,
    extra_holidays: list[str],
    targets: tuple[str | None, str | None, str | None],
    holiday_label: str = "--holiday",
) -> SlaPlan:
    """Add an SLA plan; `targets` are first response, resolution, emergency response ("4h")."""
    name = name.strip()
    if not name or len(name) > 80:
        raise AccountError("A plan needs a name of at most 80 characters.")
    if db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == name)):
        raise AccountError(f"An SLA plan named {name!r} already exists.")
    dates = [parse_date(d, holiday_label) for d in extra_holidays]
    if not targets[0] or not targets[1]:
        raise AccountError("Give both the first-response and the resolution target, e.g. 4h, 16h.")
    try:
        weekly = parse_hours(hours)
        BusinessCalendar(timezone, weekly, holidays or None, [d for d in dates if d])
        minutes = [int(parse_duration(t).total_seconds() // 60) if t else None for t in targets]
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    plan = SlaPlan(
        name=name,
        timezone=timezone,
        hours=format_hours(weekly),
        holiday_country=holidays or None,
        extra_holidays=[d.isoformat() for d in dates if d],
        first_response_minutes=minutes[0],
        resolution_minutes=minutes[1],
        emergency_response_minutes=minutes[2],
    )
    db.session.add(plan)
    return plan


def rotate_secret(site: Site) -> str:
    """Give a site a new secret for signed identity and heartbeats; the old one stops at once."""
    site.secret = secrets.token_hex(32)
    return site.secret


def find_site(name: str) -> Site:
    """Return the one site with this name (or site key)."""
    found = db.session.scalars(
        sa.select(Site).where(sa.or_(Site.name == name.strip(), Site.site_key == name.strip()))
    ).all()
    if not found:
        raise AccountError(f"No site named {name!r}.")
    if len(found) > 1:
        raise AccountError(f"{len(found)} sites are named {name!r}: give the site key instead.")
    return found[0]


def embed_snippet(site: Site) -> str:
    """Return the one-line embed for a site."""
    return (
        f'<script src="{public_url("/widget.js")}" data-site-key="{site.site_key}" async></script>'
    )
