"""`site watch NAME …`: set how the uptime watch checks a site."""

from __future__ import annotations

import click
import sqlalchemy as sa

from supportwidget.models import Site, db
from supportwidget.watch import settings


@click.command("watch")
@click.argument("name")
@click.option("--url", help="The address to check (default: the site's URL).")
@click.option("--expect", help="Text the page must contain, e.g. 'Add to cart'.")
@click.option("--interval", type=int, help="Seconds between checks (default: WATCH_INTERVAL).")
@click.option("--off", is_flag=True, help="Stop watching the site.")
def site_watch(
    name: str, url: str | None, expect: str | None, interval: int | None, off: bool
) -> None:
    """Watch a site's uptime (default: on, its URL, every WATCH_INTERVAL seconds)."""
    site = db.session.scalar(sa.select(Site).where(Site.name == name))
    if site is None:
        raise click.ClickException(f"No site named {name!r}.")
    try:
        settings.configure(site, url=url, expect=expect, interval=interval, enabled=not off)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(settings.describe(site))
