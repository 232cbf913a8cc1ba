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


def seed(port: int) -> Site:
    """Create the demo plan, clients, site and staff once."""
    site = demo_site()
    if site is not None:
        return site
    gold = SlaPlan(
        name="Gold",
        timezone="Europe/London",
        hours=BUSINESS_WEEK,
        holiday_country="GB",
        first_response_minutes=240,
        resolution_minutes=960,
        emergency_response_minutes=30,
    )
    acme = Client(name="Acme Shop", emails=["owner@acme.test"], sla_plan=gold)
    bistro = Client(name="Bistro Uno", emails=["hello@bistro.test"], hourly_rate=Decimal("120"))
    origins = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    site = Site(
        client=acme, name=DEMO_SITE, url=f"http://localhost:{port}", allowed_origins=origins
    )
    db.session.add_all(
        [
            gold,
            acme,
            bistro,
            site,
            Site(
                client=bistro,
                name="bistro.test (demo)",
                url="http://bistro.test",
                allowed_origins=origins,
            ),
        ]
    )
    admin = Staff(
        name="Alice Admin",
        email="alice@agency.test",
        role=StaffRole.ADMIN,
        on_call=True,
        phone="+447700900001",
    )
    admin.set_password(DEMO_PASSWORD)
    db.session.add_all(
        [
            admin,
            Staff(name="Bob Agent", email="bob@agency.test", on_call=True, phone="+447700900002"),
        ]
    )
    db.session.commit()
    return site


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=int, help="Port `serve` will use.")
def demo_command(port: int) -> None:
    """Seed a demo agency, client, site and staff, and print where to click."""
    init_schema()
    site = seed(port)
    click.echo("Demo data ready. Start the service with:  flask --app supportwidget serve")
    click.echo(f"Then open the example client dashboard: http://localhost:{port}/demo/")
    click.echo(f"  (the widget is served from http://127.0.0.1:{port}, another origin)")
    click.echo(f"Hosted form: http://127.0.0.1:{port}/s/{site.site_key}")
    click.echo(f"Emergency form: http://127.0.0.1:{port}/s/{site.site_key}/emergency")
    click.echo(
        f"Staff dashboard: http://127.0.0.1:{port}/dashboard/ (alice@agency.test / {DEMO_PASSWORD})"
    )
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
