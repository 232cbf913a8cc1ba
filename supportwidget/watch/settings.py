"""A site's uptime-watch settings, checked the same way for the command and the admin page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app

from supportwidget.models import Site

MIN_INTERVAL, MAX_INTERVAL = 10, 24 * 3600


def configure(
    site: Site,
    *,
    url: str | None = None,
    expect: str | None = None,
    interval: int | None = None,
    enabled: bool = True,
) -> None:
    """Change what the watch checks at a site; ValueError says what is wrong (nothing set)."""
    if url is not None:
        url = url.strip()
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("The watch URL must be an http:// or https:// address.")
        if len(url) > 500:
            raise ValueError("The watch URL may be at most 500 characters.")
    if expect is not None and len(expect.strip()) > 200:
        raise ValueError("The expected text may be at most 200 characters.")
    if interval is not None and not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise ValueError(f"The interval must be {MIN_INTERVAL} to {MAX_INTERVAL} seconds.")
    if url is not None:
        site.watch_url = url or None
    if expect is not None:
        site.watch_expect = expect.strip() or None
    if interval is not None:
        site.watch_interval = interval
    if enabled and not site.watch_enabled:
        site.watch_next_at = None  # check it at once
    site.watch_enabled = enabled


def interval_of(site: Site) -> int:
    """Return the seconds between a site's checks."""
    return site.watch_interval or int(current_app.config["WATCH_INTERVAL"])


def describe(site: Site) -> str:
    """Say how a site is watched, in one line."""
    if not site.watch_enabled:
        return f"Site {site.name}: not watched."
    expect = f", expecting {site.watch_expect!r}" if site.watch_expect else ""
    return f"Site {site.name}: watching {site.watched_url} every {interval_of(site)} s{expect}."
