"""`demo`: seed a demo agency and serve an example client dashboard that embeds the widget."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app

from supportwidget.models import Client, Site, SlaPlan, Staff, db
from supportwidget.platform.database import init_schema
from supportwidget.vocab import BUSINESS_WEEK, StaffRole

bp = Blueprint("demo", __name__)
EXAMPLE_PAGE = Path(__file__).resolve().parent / "client-dashboard.html"
DEMO_SITE = "acme.test (demo)"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed by `demo` on purpose


def demo_site() -> Site | None:
    return db.session.scalar(sa.select(Site).where(Site.name == DEMO_SITE))


BISTRO_SITE = "bistro.test (demo)"


def seed(port: int) -> tuple[Site, Site]:
    """Create the demo plan, clients, sites and staff once; point the sites at `port` always.

    Re-running `demo` with another port re-seeds the URLs, so the example page, the forms
    and the e-mailed links all follow.
    """
    site = demo_site()
    if site is None:
        site = _create()
    bistro = db.session.scalar(sa.select(Site).where(Site.name == BISTRO_SITE))
    origins = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    site.url, site.allowed_origins = f"http://localhost:{port}", origins
    if bistro is not None:
        bistro.allowed_origins = origins
    # Deliverable-looking contacts: the forms refuse special-use domains such as .test.
    site.client.emails = [ACME_CONTACT]
    if bistro is not None:
        bistro.client.emails = [BISTRO_CONTACT]
    db.session.commit()
    assert bistro is not None
    return site, bistro


ACME_CONTACT = "owner@example.com"
BISTRO_CONTACT = "hello@example.com"


def _create() -> Site:
    """Add the demo plan, the two clients (one on Gold, one without an SLA), sites and staff."""
    gold = SlaPlan(
        name="Gold",
        timezone="Europe/London",
        hours=BUSINESS_WEEK,
        holiday_country="GB",
        first_response_minutes=240,
        resolution_minutes=960,
        emergency_response_minutes=30,
    )
    acme = Client(name="Acme Shop", emails=[ACME_CONTACT], sla_plan=gold)
    bistro = Client(name="Bistro Uno", emails=[BISTRO_CONTACT], hourly_rate=Decimal("120"))
    site = Site(client=acme, name=DEMO_SITE, url="http://localhost")
    db.session.add_all(
        [
            gold,
            acme,
            bistro,
            site,
            Site(client=bistro, name=BISTRO_SITE, url="https://bistro.example.com"),
        ]
    )
    admin = Staff(
        name="Alice Admin",
        email="alice@example.com",
        role=StaffRole.ADMIN,
        on_call=True,
        phone="+447700900001",
    )
    admin.set_password(DEMO_PASSWORD)
    db.session.add_all(
        [
            admin,
            Staff(name="Bob Agent", email="bob@example.com", on_call=True, phone="+447700900002"),
        ]
    )
    db.session.flush()
    return site


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=int, help="Port `serve` will use.")
def demo_command(port: int) -> None:
    """Seed a demo agency, clients, sites and staff (again: new URLs); print where to click."""
    init_schema()
    site, bistro = seed(port)
    service = f"http://127.0.0.1:{port}"
    serve = "flask --app supportwidget serve" + ("" if port == 5000 else f" --port {port}")
    click.echo(f"Demo data ready. Start the service with:  {serve}")
    click.echo(f"Then open the example client dashboard: http://localhost:{port}/demo/")
    click.echo(f"  (the widget is served from {service}, another origin)")
    click.echo("Acme Shop (Gold SLA: first response in 4 business hours, emergencies in 30 min):")
    click.echo(f"  form: {service}/s/{site.site_key}")
    click.echo(f"  emergency: {service}/s/{site.site_key}/emergency")
    click.echo("Bistro Uno (no SLA: first come, first served; emergencies billed 120/h):")
    click.echo(f"  form: {service}/s/{bistro.site_key}")
    click.echo(f"  emergency: {service}/s/{bistro.site_key}/emergency")
    click.echo(f"Staff dashboard: {service}/dashboard/ (alice@example.com / {DEMO_PASSWORD})")
    click.echo(f"E-mails are written to {Path(current_app.instance_path) / 'mail'}")


@bp.get("/demo/")
def demo_page() -> Response:
    """Serve the example client dashboard with the demo site's embed."""
    site = demo_site()
    if site is None or not EXAMPLE_PAGE.exists():
        abort(404, "No demo here. Run `flask --app supportwidget demo` first.")
    service = "http://127.0.0.1:" + site.url.rsplit(":", 1)[-1]
    html = (
        EXAMPLE_PAGE.read_text()
        .replace("https://support.example-agency.com", service)
        .replace("YOUR-SITE-KEY", site.site_key)
    )
    response = Response(html, mimetype="text/html")
    # A client's admin page, not ours: it loads the widget from the service's origin.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self' {service}; style-src 'self' 'unsafe-inline'; frame-src {service}"
    )
    return response
