"""Staff pages on a phone, in real Chromium at 375 px: the queue as cards, tel: links."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from test_dashboard_browser import sign_in

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Site, db
from supportwidget.tickets import filing as tickets

if TYPE_CHECKING:
    from browser_fixtures import LiveService

pytest_plugins = ["browser_fixtures"]
pytestmark = pytest.mark.browser


@pytest.fixture
def live(live: LiveService) -> LiveService:
    """The live service, staff able to sign in, one emergency open."""

    def prepare() -> None:
        site = db.session.scalar(sa.select(Site))
        request = tickets.Request(
            subject="Checkout unreachable since the payment plugin update",
            description="Customers get an error page when they pay.",
            name="Jane Owner",
            email="jane@example.com",
        )
        emergencies.open_emergency(site, request, "broken", "+44 20 7946 0958", True)
        db.session.commit()

    live.query(prepare)
    return live


def test_queue_reads_as_cards_at_375px_with_tel_links(live: LiveService, chromium):
    context = chromium.new_context(viewport={"width": 375, "height": 740})
    page: Page = context.new_page()
    try:
        sign_in(page, live)
        table = page.locator("table.queue")
        expect(table.locator("thead")).to_be_hidden()
        # Nothing wider than the phone: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        subject = table.locator("td.subject").first
        # Whole words on lines of a card, not a column a few letters wide.
        assert subject.bounding_box()["width"] > 250
        lines = subject.evaluate(
            """td => { const r = document.createRange(); r.selectNodeContents(td.firstChild);
                       return r.getClientRects().length; }"""
        )
        assert lines <= 3
        expect(table.locator("td[data-label=Status]").first).to_have_text(
            "New"
        )  # labelled "Status:" by CSS
        call = table.get_by_role("link", name="+44 20 7946 0958")
        expect(call).to_have_attribute("href", "tel:+442079460958")
        table.get_by_role("link", name="SUP-1").click()
        expect(page.locator("a.tel")).to_have_attribute("href", "tel:+442079460958")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()
