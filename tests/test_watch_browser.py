"""The site page's uptime and response-time chart in real Chromium (issue 18)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from test_watch import StandInSite

from supportwidget.models import Site, Staff, db
from supportwidget.watch.runner import Watcher

if TYPE_CHECKING:
    from browser_fixtures import LiveService

pytest_plugins = ["browser_fixtures"]
pytestmark = pytest.mark.browser
PASSWORD = "browser-test-password"


def test_the_site_page_draws_uptime_and_the_response_chart(page: Page, live_server: LiveService):
    standin = StandInSite()
    live_server.app.config["WATCH_ALLOW_PRIVATE"] = True

    def prepare() -> int:
        for member in db.session.scalars(sa.select(Staff)):
            member.set_password(PASSWORD)
        site = db.session.scalar(sa.select(Site))
        site.url = standin.url
        db.session.commit()
        return site.id

    def due() -> None:
        db.session.execute(sa.update(Site).values(watch_next_at=None))
        db.session.commit()

    site_id = live_server.query(prepare)
    try:
        for mode in ("ok", "ok", "fail"):
            standin.set(mode)
            live_server.query(due)
            # Playwright's own loop runs on this thread: the round gets a thread of its own.
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, Watcher(live_server.app, name="browser").once()).result()
    finally:
        standin.close()

    page.goto(f"{live_server.url}/dashboard/sites/{site_id}")
    page.get_by_label("E-mail").fill("alice@agency.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/sites/{site_id}")
    uptime = page.locator("#uptime")
    expect(uptime.locator("dl.uptimes")).to_contain_text("24 h66.67 %")
    chart = uptime.get_by_role("img", name="Response time over the last 24 hours")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] >= 150
    line = chart.locator("polyline.response-time")
    expect(line).to_have_count(1)
    # Chromium drew the 10-minute average (both good checks fall in one) inside the chart.
    point = chart.locator("circle.bucket")
    expect(point).to_have_count(1)
    drawn = point.bounding_box()
    assert drawn is not None and drawn["width"] > 0
    assert box["y"] <= drawn["y"] <= box["y"] + box["height"]
    expect(chart.locator("rect.failed")).to_have_count(1)
    assert chart.locator("rect.failed").evaluate("el => el.getBBox().height") > 100
