"""The staff dashboard in real Chromium: sign in, work a ticket, triage an emergency, sign out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Site, Ticket, TimeEntry, db
from supportwidget.tickets import filing as tickets

from browser_fixtures import STAFF_PASSWORD

if TYPE_CHECKING:
    from browser_fixtures import LiveService

pytest_plugins = ["browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def file_ticket(live: LiveService, emergency: bool = False) -> str:
    """File a request (or an emergency) through the workflow; return its reference."""

    def make() -> str:
        site = db.session.scalar(sa.select(Site))
        request = tickets.Request(
            subject="Checkout <b>button</b> does nothing",
            description="Clicking 'Pay' does nothing <script>alert(1)</script>",
            name="Jane Owner",
            email="jane@example.com",
        )
        if emergency:
            ticket = emergencies.open_emergency(site, request, "broken", None, True)
        else:
            ticket = tickets.open_standard_request(site, request)
        return ticket.reference

    return live.query(make)


def sign_in(page: Page, live: LiveService) -> None:
    page.goto(f"{live.url}/dashboard/")
    expect(page).to_have_url(f"{live.url}/dashboard/login?next=/dashboard/")
    page.get_by_label("E-mail").fill("alice@agency.test")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()


def test_sign_in_reply_status_time_and_sign_out(page: Page, live: LiveService, console):
    reference = file_ticket(live)
    page.goto(f"{live.url}/dashboard/login")
    page.get_by_label("E-mail").fill("alice@agency.test")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    sign_in(page, live)
    page.get_by_role("link", name=reference).click()
    # Requester text shows as text, never as markup.
    expect(page.get_by_role("heading", level=1)).to_contain_text("<b>button</b>")
    expect(page.locator(".description")).to_contain_text("<script>alert(1)</script>")

    page.get_by_label("Reply to Jane Owner").fill("We found the cause and fixed it.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("Reply sent to jane@example.com")
    expect(page.locator(".timeline")).to_contain_text("We found the cause and fixed it.")

    page.get_by_label("Status").select_option("waiting_on_client")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_role("status")).to_contain_text("waiting on you")

    page.get_by_label("Minutes").fill("45")
    page.get_by_label("Note", exact=True).fill("Checked the payment plugin")
    page.get_by_label("Billable").check()
    page.get_by_role("button", name="Log time").click()
    expect(page.locator(".timeline")).to_contain_text("45 min logged by Alice (billable)")

    def check() -> tuple[str, int]:
        ticket = db.session.scalar(sa.select(Ticket))
        return ticket.status, db.session.scalar(sa.select(sa.func.sum(TimeEntry.minutes)))

    assert live.query(check) == ("waiting_on_client", 45)
    # Intake mail to Alice, the staff inbox and Jane, then the reply and the status change.
    mails = [m for m in live.smtp.wait_for(5) if m["To"] == "jane@example.com"]
    assert len(mails) == 3
    assert "We found the cause" in mails[1].get_body(("plain",)).get_content()
    assert "Waiting on you" in mails[2]["Subject"]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    page.goto(f"{live.url}/dashboard/tickets/{reference}")
    expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    assert not [m for m in console if "Content Security Policy" in m], console


def test_acknowledge_and_downgrade_an_emergency(page: Page, live: LiveService):
    reference = file_ticket(live, emergency=True)
    sign_in(page, live)
    row = page.locator("tr", has_text=reference)
    expect(row).to_contain_text("not acknowledged")
    row.get_by_role("link", name=reference).click()
    page.get_by_role("button", name="I'm on it: acknowledge").click()
    expect(page.get_by_role("status")).to_contain_text("paging has stopped")
    page.get_by_label("Downgrade to a standard request").check()
    page.get_by_role("button", name="Save triage").click()
    expect(page.get_by_role("alert")).to_contain_text("reason")
    page.get_by_label("Downgrade to a standard request").check()
    page.get_by_label("Reason").fill("A slow checkout is a normal request.")
    page.get_by_role("button", name="Save triage").click()
    expect(page.get_by_role("status")).to_contain_text("Downgraded to a standard request")

    def state() -> tuple[str, str | None, str | None]:
        ticket = db.session.scalar(sa.select(Ticket))
        return ticket.kind, ticket.triage_decision, ticket.acknowledged_by.name

    assert live.query(state) == ("standard", "downgrade", "Alice")
