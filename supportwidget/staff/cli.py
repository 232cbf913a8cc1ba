"""Command line: register clients, sites, staff and SLA plans."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from supportwidget.models import Client, Site, Staff, db
from supportwidget.sla import reports
from supportwidget.staff import accounts, lifecycle
from supportwidget.staff.accounts import AccountError
from supportwidget.staff.auth import hash_token
from supportwidget.staff.billing import BillingError, month_bounds
from supportwidget.vocab import StaffRole

client_cli = AppGroup("client", help="Manage client accounts.")
site_cli = AppGroup("site", help="Manage client websites.")
staff_cli = AppGroup("staff", help="Manage staff members.")
sla_cli = AppGroup("sla", help="Manage SLA plans.")
report_cli = AppGroup("report", help="Monthly reports.")


def fail(message: str) -> NoReturn:
    """Stop the command with a clear message and a non-zero exit status."""
    raise click.ClickException(message)


@contextmanager
def explained() -> Iterator[None]:
    """Turn a refused change into a clear message and a non-zero exit, saving nothing."""
    try:
        yield
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc


def find_client(name: str) -> Client:
    client = db.session.scalar(sa.select(Client).where(Client.name == name))
    if client is None:
        fail(f"No client named {name!r}. Create it with `client add`.")
    return client


@client_cli.command("add")
@click.argument("name")
@click.option("--email", "emails", multiple=True, required=True, help="Contact e-mail (repeat).")
@click.option("--sla", "plan_name", help="SLA plan name.")
@click.option("--sla-start", help="Contract start date (YYYY-MM-DD).")
@click.option("--sla-end", help="Contract end date (YYYY-MM-DD).")
@click.option("--hourly-rate", help="Emergency hourly rate for work outside an SLA.")
def client_add(
    name: str,
    emails: tuple[str, ...],
    plan_name: str | None,
    sla_start: str | None,
    sla_end: str | None,
    hourly_rate: str | None,
) -> None:
    """Register a client."""
    with explained():
        name = accounts.client_name(name)
        client = Client(name=name, emails=accounts.contact_emails(list(emails)))
        accounts.set_contract(client, plan_name, sla_start, sla_end)
        client.hourly_rate = accounts.hourly_rate(hourly_rate)
    db.session.add(client)
    db.session.commit()
    click.echo(f"Client {name!r} added.")


@client_cli.command("contract")
@click.argument("name")
@click.option("--sla", "plan_name", help="SLA plan name; leave out to remove the SLA.")
@click.option("--sla-start")
@click.option("--sla-end")
def client_contract(
    name: str, plan_name: str | None, sla_start: str | None, sla_end: str | None
) -> None:
    """Change a client's SLA contract."""
    client = find_client(name)
    with explained():
        accounts.set_contract(client, plan_name, sla_start, sla_end)
    db.session.commit()
    click.echo(f"Client {name!r}: SLA {plan_name or 'none'}.")


@site_cli.command("add")
@click.option("--client", "client_name", required=True)
@click.option("--url", required=True, help="The site's address.")
@click.option("--origin", "origins", multiple=True, help="Allowed origin for the widget (repeat).")
@click.option("--name", help="Display name (default: the URL's host).")
def site_add(client_name: str, url: str, origins: tuple[str, ...], name: str | None) -> None:
    """Register a client site and print its embed snippet."""
    client = find_client(client_name)
    with explained():
        allowed = accounts.allowed_origins(url, list(origins))
        name = accounts.site_name(name, url)
    site = Site(client=client, url=url, name=name, allowed_origins=allowed)
    db.session.add(site)
    db.session.commit()
    click.echo(f"Site {site.name} added for {client.name}. Site key: {site.site_key}")
    click.echo(f"Site secret (for signed identity): {site.secret}")
    click.echo("Embed this in the site's admin dashboard:")
    click.echo(accounts.embed_snippet(site))


@site_cli.command("secret")
@click.argument("name")
@click.option("--rotate", is_flag=True, help="Issue a new secret; the old one stops at once.")
def site_secret(name: str, rotate: bool) -> None:
    """Print a site's secret for signed identity and heartbeats (a new one with --rotate)."""
    with explained():
        site = accounts.find_site(name)
    if rotate:
        accounts.rotate_secret(site)
        db.session.commit()
        click.echo(f"New secret for {site.name}: update the WordPress plugin's settings.")
    else:
        click.echo(f"Secret of {site.name} (site key {site.site_key}):")
    click.echo(site.secret)


@staff_cli.command("add")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--phone", help="Mobile number in E.164, e.g. +447700900123.")
@click.option("--on-call", is_flag=True)
@click.option("--admin", is_flag=True)
@click.option("--password")
def staff_add(
    name: str, email: str, phone: str | None, on_call: bool, admin: bool, password: str | None
) -> None:
    """Add a staff member."""
    with explained():
        name, email = accounts.staff_identity(name, email)
        phone = accounts.staff_phone(phone)
    member = Staff(
        name=name,
        email=email,
        phone=phone,
        on_call=on_call,
        role=StaffRole.ADMIN if admin else StaffRole.AGENT,
    )
    if password:
        member.set_password(password)
    db.session.add(member)
    db.session.commit()
    click.echo(
        f"Staff member {name} <{email}> added as {member.role}{', on call' if on_call else ''}."
    )


@staff_cli.command("invite")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--admin", is_flag=True)
@click.option("--phone", help="Mobile number in E.164, e.g. +447700900123.")
@click.option("--on-call", is_flag=True)
def staff_invite(name: str, email: str, admin: bool, phone: str | None, on_call: bool) -> None:
    """Add a staff member without a password and e-mail them a set-password link (72 h)."""
    with explained():
        member, link = lifecycle.invite(name, email, phone, on_call, admin)
    click.echo(f"Invited {member.name} <{member.email}> as {member.role}; e-mailed this link:")
    click.echo(link)


@staff_cli.command("disable")
@click.argument("email")
def staff_disable(email: str) -> None:
    """Disable a staff member: signed out, no e-mail, SMS or call, cannot sign in."""
    member = find_staff(email)
    with explained():
        stopped = lifecycle.set_active(member, False)
    click.echo(
        f"{member.email} disabled: sessions and API token stopped, "
        f"{stopped} queued notification(s) to them withdrawn."
    )


@staff_cli.command("enable")
@click.argument("email")
def staff_enable(email: str) -> None:
    """Enable a disabled staff member again."""
    member = find_staff(email)
    with explained():
        lifecycle.set_active(member, True)
    click.echo(f"{member.email} enabled: they can sign in and get notifications again.")


def find_staff(email: str) -> Staff:
    member = db.session.scalar(sa.select(Staff).where(Staff.email == email.strip().lower()))
    if member is None:
        fail(f"No staff member with e-mail {email!r}.")
    return member


@staff_cli.command("token")
@click.argument("email")
def staff_token(email: str) -> None:
    """Print a new API token for a staff member (replaces the old one)."""
    member = find_staff(email)
    token = "sw_" + secrets.token_urlsafe(32)
    member.api_token_hash = hash_token(token)
    db.session.commit()
    click.echo(f"New API token for {member.email} (shown once):")
    click.echo(token)


@staff_cli.command("password")
@click.argument("email")
@click.password_option()
def staff_password(email: str, password: str) -> None:
    """Set a staff member's password and sign out their sessions."""
    member = find_staff(email)
    member.set_password(password)
    member.session_version += 1
    db.session.commit()
    click.echo(f"Password for {member.email} changed.")


@sla_cli.command("add")
@click.argument("name")
@click.option("--timezone", required=True)
@click.option("--hours", required=True, help='e.g. "mon-thu 09:00-17:30, fri 09:00-16:00"')
@click.option("--holidays", "country", help="Country (and subdivision) code, e.g. GB or US-CA.")
@click.option("--holiday", "extra", multiple=True, help="Extra closed date (repeat).")
@click.option("--first-response", required=True, help="Business time, e.g. 4h.")
@click.option("--resolution", required=True, help="Business time, e.g. 16h.")
@click.option("--emergency-response", help="e.g. 30m.")
def sla_add(
    name: str,
    timezone: str,
    hours: str,
    country: str | None,
    extra: tuple[str, ...],
    first_response: str,
    resolution: str,
    emergency_response: str | None,
) -> None:
    """Create an SLA plan."""
    with explained():
        plan = accounts.create_plan(
            name, timezone, hours, country, list(extra),
            (first_response, resolution, emergency_response),
        )  # fmt: skip
    db.session.commit()
    click.echo(f"SLA plan {name!r} added: {plan.hours} ({timezone}).")


@report_cli.command("sla")
@click.option("--month", help="YYYY-MM (default: last month).")
@click.option("--client", "client_name", help="Only this client.")
@click.option("--send", is_flag=True, help="E-mail each client's report to its contacts.")
def report_sla(month: str | None, client_name: str | None, send: bool) -> None:
    """Print the monthly SLA report as CSV; --send e-mails it to the clients' contacts."""
    month = month or reports.default_month()
    try:
        start, end = month_bounds(month, reports.timezone())
    except BillingError as exc:
        fail(str(exc))
    client_id = find_client(client_name).id if client_name else None
    found = reports.monthly(start, end, client_id)
    click.echo(reports.as_csv(found), nl=False)
    if send:
        rows = reports.send(month, found)
        click.echo(f"Queued {len(rows)} e-mail(s) to the clients' contacts.")
