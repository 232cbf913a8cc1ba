"""One conversation in real Chromium: staff ask from the dashboard and by e-mail, the
requester answers on their status page and by e-mail, and everything lands in one thread."""

from __future__ import annotations

import io
import re
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import Page, expect
from test_dashboard_browser import file_ticket, sign_in

from supportwidget.intake import mailin
from supportwidget.models import Ticket, TicketEvent, db

if TYPE_CHECKING:
    from browser_fixtures import LiveService

pytest_plugins = ["browser_fixtures"]
pytestmark = pytest.mark.browser
JANE = "jane@example.com"


def plain(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def answer_to(original: EmailMessage, sender: str, body: str) -> bytes:
    """Write the reply a mail client makes: threaded, the original quoted below."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = original["From"]
    reply["Subject"] = "Re: " + original["Subject"]
    reply["Message-ID"] = f"<{abs(hash(body))}@mail.example.com>"
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = f"{original['References']} {original['Message-ID']}"
    quoted = "\n".join("> " + line for line in plain(original).splitlines())
    reply.set_content(f"{body}\n\nOn Tue, 1 Dec 2026 at 10:00, Support wrote:\n{quoted}\n")
    return reply.as_bytes()


def pipe(live: LiveService, raw: bytes) -> str:
    """Hand a message to mail-in as the MTA's pipe does."""
    return live.query(lambda: mailin.handle(raw))


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_questions_and_answers_from_both_sides_land_in_one_thread(
    page: Page, live: LiveService, console
):
    reference = file_ticket(live)
    intake = live.smtp.wait_for(3)
    staff_mail = next(m for m in intake if m["To"] == "alice@agency.test")
    assert staff_mail["Reply-To"] is None
    live.smtp.clear()

    # Staff ask from the dashboard and wait on the client.
    sign_in(page, live)
    page.goto(f"{live.url}/dashboard/tickets/{reference}")
    page.get_by_label("Reply to Jane Owner").fill("Which browser do you use?")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("Reply sent to jane@example.com")
    page.get_by_label("Status").select_option("waiting_on_client")
    page.get_by_role("button", name="Change status").click()
    page.get_by_label("Internal note").fill("Probably the old Safari bug again.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".timeline")).to_contain_text("Probably the old Safari bug again.")
    question = next(m for m in live.smtp.wait_for(2) if m["To"] == JANE)
    assert "Which browser do you use?" in plain(question)
    status_url = re.search(r"(http://\S+/t/\S+)", plain(question)).group(1)

    # A colleague answers the staff notification from their own mail client.
    outcome = pipe(live, answer_to(staff_mail, "Alice <alice@agency.test>", "Is it on a phone?"))
    assert outcome == f"staff reply by alice@agency.test sent on {reference}"
    by_mail = next(m for m in live.smtp.wait_for(3) if "Is it on a phone?" in plain(m))
    assert by_mail["To"] == JANE

    # The requester reads both questions on their status page and answers there.
    requester = page.context.browser.new_context().new_page()
    requester.goto(status_url)
    thread = requester.locator(".conversation")
    expect(thread).to_contain_text("Which browser do you use?")
    expect(thread).to_contain_text("Is it on a phone?")
    expect(requester.locator("body")).not_to_contain_text("Safari bug")  # internal
    expect(requester.locator(".status")).to_contain_text("Waiting on you")
    requester.get_by_label("Your reply").fill("Safari 17, on a Mac, not a phone.")
    requester.locator("input[type=file]").set_input_files(
        {"name": "safari.png", "mimeType": "image/png", "buffer": png()}
    )
    requester.get_by_role("button", name="Send reply").click()
    expect(requester.get_by_role("status")).to_contain_text("Your reply was added")
    expect(thread).to_contain_text("Safari 17, on a Mac, not a phone.")
    expect(thread).to_contain_text("Screenshots attached: 1")
    expect(requester.locator(".status")).to_contain_text("In progress")

    # Then they also answer the e-mail.
    outcome = pipe(
        live, answer_to(by_mail, "Jane Owner <jane@example.com>", "PS: it worked yesterday.")
    )
    assert outcome == f"reply added to {reference}"
    requester.reload()
    messages = thread.locator(".message .body").all_inner_texts()
    assert messages[1:] == [
        "Which browser do you use?",
        "Is it on a phone?",
        "Safari 17, on a Mac, not a phone.",
        "PS: it worked yesterday.",
    ]

    def kinds() -> list[str]:
        ticket = db.session.scalar(sa.select(Ticket))
        events = db.session.scalars(
            sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
        ).all()
        return [e.kind for e in events if e.kind in ("reply", "client_reply", "note")]

    assert live.query(kinds) == ["reply", "note", "reply", "client_reply", "client_reply"]
    page.reload()
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("Reply from jane@example.com on the status page")
    expect(timeline).to_contain_text("Reply by Alice by e-mail")
    assert not [m for m in console if "Content Security Policy" in m], console
