"""Live servers and real Chromium for the widget tests.

* ``live_server``: the real app (SQLite file, real SMTP, tasks run at once)
  served by waitress on a free 127.0.0.1 port, with a seeded client, site and
  staff member, plus a host site on another origin (``http://localhost:<port>``)
  whose pages embed widget.js.
* ``chromium``: one headless Debian Chromium per test session.
* ``page``: a fresh browser context and page for one test; ``console`` its log.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import waitress
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright

from supportwidget.models import Client, Site, Staff, db

from conftest import make_app, sqlite_copy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@dataclass
class HostPage:
    """One page of the host site: its body and extra response headers."""

    body: str
    headers: dict[str, str] = field(default_factory=dict)


class HostSite:
    """A plain HTTP server on another origin, like a client's wp-admin."""

    def __init__(self) -> None:
        self.pages: dict[str, HostPage] = {}
        handler = _host_handler(self.pages)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self.server.server_address[1])
        # Same server, two origins: only the first is in the site's allowed origins.
        self.origin = f"http://localhost:{self.port}"
        self.other_origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(
        self,
        path: str,
        embed: str,
        *,
        css: str = "",
        headers: dict[str, str] | None = None,
        title: str = "Dashboard ‹ Acme — WordPress",
    ) -> str:
        """Serve a dashboard page holding ``embed`` at ``path``; return its URL (allowed origin)."""
        self.pages[path] = HostPage(host_page(embed, title=title, css=css), headers or {})
        return self.origin + path

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _host_handler(pages: dict[str, HostPage]) -> type[BaseHTTPRequestHandler]:
    """Return a request handler class that serves ``pages``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            page = pages.get(self.path.split("?")[0])
            body = (page.body if page else "not found").encode()
            self.send_response(200 if page else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (page.headers if page else {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


def host_page(embed: str, *, title: str = "Dashboard ‹ Acme — WordPress", css: str = "") -> str:
    """Return a client dashboard page holding ``embed`` (one or more script tags)."""
    style = f"<style>{css}</style>" if css else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title>{style}</head><body><h1>Dashboard</h1><p><a href='#'>Posts</a></p>"
        f"<p><button type='button'>Host button</button></p>{embed}</body></html>"
    )


def embed_tag(service_url: str, site_key: str, **data: str) -> str:
    """Return the embed snippet with ``data-*`` attributes (``user_name`` → ``data-user-name``)."""
    attrs = "".join(
        f' data-{name.replace("_", "-")}="{html.escape(value)}"' for name, value in data.items()
    )
    src = f"{service_url}/widget.js"
    return f'<script src="{src}" data-site-key="{site_key}"{attrs} async></script>'


@dataclass
class LiveService:
    """The running service, its seeded site, its mailbox and the host site."""

    url: str
    app: Flask
    site_key: str
    smtp: Any
    host: HostSite

    def embed(self, **data: str) -> str:
        """Return this site's embed snippet."""
        return embed_tag(self.url, self.site_key, **data)

    def query(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in an app context on a fresh session and return its result."""
        with self.app.app_context():
            try:
                return fn()
            finally:
                db.session.remove()


def _seed(app: Flask, host_origin: str) -> str:
    """Seed a client without SLA, its site (allowing ``host_origin``) and one staff member."""
    with app.app_context():
        client = Client(name="Acme Shop", emails=["owner@acme.test"])
        site = Site(client=client, name="acme.test", url=host_origin, allowed_origins=[host_origin])
        staff = Staff(
            name="Alice",
            email="alice@agency.test",
            phone="+447700900001",
            on_call=True,
            role="admin",
        )
        db.session.add_all([client, site, staff])
        db.session.commit()
        key = site.site_key
        db.session.remove()
    return key


def _stop_waitress(server: Any, thread: threading.Thread) -> None:
    """Close every waitress channel from inside its own loop so ``run`` returns."""

    def close_all() -> None:
        for channel in list(server._map.values()):
            channel.close()

    server.trigger.pull_trigger(close_all)
    thread.join(5)
    server.task_dispatcher.shutdown()


def waitress_server() -> Any:
    """Bind waitress to a free 127.0.0.1 port, to be handed its app once the port is known."""
    return waitress.create_server(lambda environ, start: [], host="127.0.0.1", port=0, threads=4)


@contextmanager
def serving(server: Any, app: Flask) -> Iterator[str]:
    """Serve ``app`` on a server from ``waitress_server`` and yield its URL."""
    server.application = app
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        _stop_waitress(server, thread)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def live_server(tmp_path: Path, smtp_server: Any, sqlite_template: Path) -> Iterator[LiveService]:
    """Run the service under waitress and a host site on another origin."""
    host = HostSite()
    server = waitress_server()
    url = f"http://127.0.0.1:{server.effective_port}"
    app = make_app(
        sqlite_copy(sqlite_template, tmp_path / "live.sqlite"),
        tmp_path,
        **smtp_server.config(),
        PUBLIC_URL=url,
        QUEUE_IMMEDIATE=True,
    )
    key = _seed(app, host.origin)
    with serving(server, app):
        host.start()
        try:
            yield LiveService(url=url, app=app, site_key=key, smtp=smtp_server, host=host)
        finally:
            host.stop()


# Assertions wait as long as actions do: on a loaded 2-core CI machine a frame navigation (the
# widget's emergency tab) once took longer than Playwright's default 5 s and failed a run.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Launch Debian's Chromium once for the session."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests skipped: {CHROMIUM} missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def fresh_page(browser: Browser, **options: Any) -> Iterator[Page]:
    """Open a page in a fresh context (no shared storage), closed afterwards."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, **options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """Open a fresh context (no shared storage) and page for one test."""
    with fresh_page(chromium) as opened:
        yield opened


@pytest.fixture
def console(page: Page) -> list[str]:
    """Collect the page's console messages (warnings, CSP violations)."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    return messages


# Headless Chromium has no picker for getDisplayMedia: this flag answers it with the
# calling tab, so "Capture this page" records real pixels of the page under test.
CAPTURE_ARGS = [*CHROMIUM_ARGS, "--auto-accept-this-tab-capture"]


@pytest.fixture(scope="session")
def capturing_chromium(chromium: Browser) -> Iterator[Browser]:
    """Launch a second Chromium that grants tab capture without asking."""
    # Same Playwright driver as ``chromium``: one sync_playwright per thread.
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=CAPTURE_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def capture_page(capturing_chromium: Browser) -> Iterator[Page]:
    """Open a fresh context and page in the capturing Chromium."""
    with fresh_page(capturing_chromium) as opened:
        yield opened


@pytest.fixture
def audit_page(chromium: Browser) -> Iterator[Page]:
    """Open a page whose CSP lets Playwright inject axe-core's script tag into every frame."""
    with fresh_page(chromium, bypass_csp=True) as opened:
        yield opened


STAFF_PASSWORD = "browser-test-password"


@pytest.fixture
def live(live_server: LiveService) -> LiveService:
    """The live service with every staff member (Alice first) able to sign in."""

    def prepare() -> None:
        for member in db.session.scalars(sa.select(Staff)):
            member.set_password(STAFF_PASSWORD)
        db.session.commit()

    live_server.query(prepare)
    return live_server
