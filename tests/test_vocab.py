"""One vocabulary: every closed set is defined in vocab.py, and what cannot import it agrees.

The columns, the migrations, the channel registry, the catalogs, the API document, the
forms and the dashboard are each checked against the sets, so adding a value to one set is
one entry in vocab.py (plus its translations) or a test says what else it needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from babel.dates import format_datetime
from flask import Flask
from markupsafe import escape
from playwright.sync_api import Page, expect
from test_mailin import mail, pipe, png_bytes

import supportwidget
from supportwidget import config
from supportwidget.models import Notification, Staff, Ticket, db, utcnow
from supportwidget.notify.channels import CHANNELS
from supportwidget.platform import i18n
from supportwidget.staff import openapi
from supportwidget.vocab import (
    CLOSED_SETS,
    DEFAULT_LANGUAGE,
    MAX_SCREENSHOTS,
    STATUS_FILTERS,
    CallOutcome,
    Choices,
    EmergencyCategory,
    EmergencyPhase,
    Language,
    NotificationChannel,
    NotificationStatus,
    OfflineAnswer,
    QueueScope,
    SlaTarget,
    StaffRole,
    TicketKind,
    TicketStatus,
    TriageDecision,
    WatchStatus,
)

from test_dashboard import PASSWORD, login, new_request, post_action

if TYPE_CHECKING:
    from browser_fixtures import LiveService

pytest_plugins = ["browser_fixtures"]

PACKAGE = Path(supportwidget.__file__).parent
# Where each stored set lives. SLA targets are kept in JSON lists, call outcomes in the
# timeline's JSON, the offline answer in the free-text column of every category's answer,
# the queue scopes nowhere.
COLUMNS: dict[sa.Column, type[Choices]] = {
    Ticket.__table__.c.status: TicketStatus,
    Ticket.__table__.c.kind: TicketKind,
    Ticket.__table__.c.category: EmergencyCategory,
    Ticket.__table__.c.triage_decision: TriageDecision,
    Ticket.__table__.c.locale: Language,
    Staff.__table__.c.role: StaffRole,
    Notification.__table__.c.channel: NotificationChannel,
    Notification.__table__.c.status: NotificationStatus,
}


def requester_texts() -> list[object]:
    """Return every lazily translated text vocab.py gives the requester."""
    texts: list[object] = [status.requester_label for status in TicketStatus]
    texts += [status.requester_note for status in TicketStatus if status.requester_note]
    texts += [category.requester_label for category in EmergencyCategory]
    texts += [category.question for category in EmergencyCategory]
    texts += [answer.requester_label for answer in OfflineAnswer]
    return texts + [phase.requester_label for phase in EmergencyPhase]


# --- storage ----------------------------------------------------------------------------------


def test_every_stored_value_fits_its_column():
    unstored = {QueueScope, SlaTarget, CallOutcome, OfflineAnswer, WatchStatus}
    assert set(COLUMNS.values()) == set(CLOSED_SETS) - unstored
    too_long = {
        f"{column.table.name}.{column.name}": (closed_set.width(), column.type.length)
        for column, closed_set in COLUMNS.items()
        if closed_set.width() > column.type.length
    }
    # Widen the column in models.py and add a migration (the next test checks both agree).
    assert too_long == {}


def test_the_migrations_build_the_schema_the_models_declare(app: Flask):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


# --- what cannot import vocab.py -------------------------------------------------------------


def test_the_channel_registry_has_a_channel_for_each_value_and_no_other():
    assert sorted(CHANNELS) == sorted(NotificationChannel.values())
    assert all(channel.name == name for name, channel in CHANNELS.items())


def test_every_requester_text_is_translated_in_every_language(app: Flask):
    moment = utcnow()
    with app.test_request_context("/s/x"), i18n.language(DEFAULT_LANGUAGE):
        english = [str(text) for text in requester_texts()]
    for language in Language:
        # Babel knows the language and every date pattern formats in it.
        for pattern in (language.due_pattern, language.day_pattern, language.sent_pattern):
            assert format_datetime(moment, pattern, locale=language.value)
        if language is DEFAULT_LANGUAGE:
            continue
        with app.test_request_context("/s/x"), i18n.language(language):
            assert i18n.current_language() == language
            translated = [str(text) for text in requester_texts()]
        untranslated = [e for e, t in zip(english, translated, strict=True) if e == t]
        assert untranslated == [], f"{language}: add these to its catalog and compile it"


def test_the_api_document_takes_its_enums_from_vocab():
    schemas = openapi.document()["components"]["schemas"]
    assert schemas["TicketStatus"]["enum"] == list(TicketStatus.values())
    assert schemas["TicketKind"]["enum"] == list(TicketKind.values())
    assert schemas["EmergencyCategory"]["enum"] == list(EmergencyCategory.values())
    assert schemas["StatusFilter"]["enum"] == [value.value for value in STATUS_FILTERS]
    assert list(schemas["TargetFlags"]["properties"]) == list(SlaTarget.values())
    (status,) = [
        p
        for p in openapi.document()["paths"]["/tickets"]["get"]["parameters"]
        if p["name"] == "status"
    ]
    assert status["schema"]["default"] == QueueScope.OPEN


def test_the_emergency_form_offers_every_category_in_the_page_language(client, site):
    page = client.get(f"/s/{site.site_key}/emergency?locale=de").get_data(as_text=True)
    offered = re.findall(r'name="category"[^>]* value="([^"]+)"', page)
    assert offered == list(EmergencyCategory.values())
    with client.application.test_request_context("/s/x"), i18n.language(Language.DE):
        labels = [str(category.requester_label) for category in EmergencyCategory]
    assert all(str(escape(label)) in page for label in labels)


def sign_in_as_bob(client) -> None:
    """Give the seeded staff passwords and sign Bob in."""
    for member in db.session.scalars(sa.select(Staff)):
        member.set_password(PASSWORD)
    db.session.commit()
    login(client, "bob@agency.test")


def test_the_queue_filters_offer_every_status_and_kind_with_the_staff_labels(client, site):
    sign_in_as_bob(client)
    page = client.get("/dashboard/").get_data(as_text=True)
    options = dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', page))
    for value in (*STATUS_FILTERS, *TicketKind):
        assert options[value] == value.label


def test_no_template_spells_out_a_value_of_a_closed_set():
    values = "|".join(re.escape(v) for closed in CLOSED_SETS for v in closed.values())
    spelled = re.compile(
        rf"""(?:==|!=|\bvalue=)\s*(["'])(?:{values})\1|(["'])(?:{values})\2\s*(?:==|!=)"""
    )
    found = [
        f"{path.relative_to(PACKAGE)}: {match.group(0)}"
        for path in PACKAGE.glob("*/templates/**/*.*")
        for match in spelled.finditer(path.read_text())
    ]
    assert found == []


# --- what the people involved see ------------------------------------------------------------


def test_staff_read_the_staff_label_where_the_requester_reads_theirs(client, site, smtp_server):
    ticket = new_request(site)
    smtp_server.wait_for(4)
    smtp_server.clear()
    sign_in_as_bob(client)
    waiting = TicketStatus.WAITING_ON_CLIENT
    changed = post_action(client, ticket, "status", status=waiting)
    flash = client.get(changed.headers["Location"]).get_data(as_text=True)
    assert "Status changed to waiting on client; requester e-mailed" in flash
    assert "(they read “waiting on you”)" in flash
    badge = re.search(r'<span class="badge status">([^<]*)</span>', flash)
    assert badge and badge.group(1) == "Waiting on client"
    assert "Status New → Waiting on client by Bob" in flash
    queue = client.get("/dashboard/?status=waiting_on_client").get_data(as_text=True)
    assert '<td data-label="Status">Waiting on client</td>' in queue
    assert "Waiting on you" not in queue
    (status_mail,) = smtp_server.wait_for(1)
    assert status_mail["Subject"].startswith(f"[{ticket.reference}] Waiting on you")
    assert str(waiting.requester_note) in status_mail.get_body(("plain",)).get_content()


def test_mail_in_keeps_max_screenshots_images(runner, site):
    msg = mail("Acme Owner <owner@acme.test>", "Checkout broken", "Every step shows an error.")
    for number in range(MAX_SCREENSHOTS + 2):
        msg.add_attachment(png_bytes(), maintype="image", subtype="png", filename=f"{number}.png")
    assert pipe(runner, msg).exit_code == 0
    ticket = db.session.scalar(sa.select(Ticket))
    assert [a.filename for a in ticket.attachments] == [f"{n}.png" for n in range(MAX_SCREENSHOTS)]


def test_the_body_limit_lets_a_request_carry_every_screenshot():
    # The form's own fields (20,000 characters of description, page details) fit in a MiB.
    needed = MAX_SCREENSHOTS * config.MAX_SCREENSHOT_BYTES + config.MiB
    assert config.MAX_CONTENT_LENGTH >= needed


@pytest.mark.slow
@pytest.mark.browser
def test_the_form_page_takes_at_most_max_screenshots(live_server: LiveService, page: Page):
    page.goto(f"{live_server.url}/s/{live_server.site_key}?locale=fr")
    expect(page.locator("#screenshots-zone label")).to_contain_text(f"{MAX_SCREENSHOTS} images")
    shots = [
        {"name": f"{n}.png", "mimeType": "image/png", "buffer": png_bytes()}
        for n in range(MAX_SCREENSHOTS + 1)
    ]
    page.locator("input[type=file]").set_input_files(shots)
    expect(page.locator("#thumbs li")).to_have_count(MAX_SCREENSHOTS)
    expect(page.get_by_role("alert")).to_contain_text(f"{MAX_SCREENSHOTS} captures")
