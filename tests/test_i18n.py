"""Languages: the requester's forms, pages and e-mails in English, French or German.

The catalogs are checked against a fresh extraction of the sources, the pages are
fetched as a French or German browser would, the e-mails come out of a real SMTP
server, and the widget's iframe is driven in Chromium with ``data-locale="fr"``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect

from supportwidget.models import Site, SlaPlan, Staff, Ticket, db
from supportwidget.platform import i18n
from supportwidget.tickets import actions as updates
from supportwidget.tickets import filing as tickets

from conftest import form_token, sqlite_copy, standard_fields

if TYPE_CHECKING:
    from browser_fixtures import LiveService

pytest_plugins = ["browser_fixtures"]

ROOT = Path(__file__).parent.parent
TRANSLATIONS = ROOT / "supportwidget" / "translations"
LANGUAGES = ["fr", "de", "es"]
FRENCH_MONTHS = "janv.|févr.|mars|avr.|mai|juin|juil.|août|sept.|oct.|nov.|déc."
FRENCH_DAYS = "lun.|mar.|mer.|jeu.|ven.|sam.|dim."


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """Run this module on SQLite only: nothing here depends on the database engine."""
    return sqlite_copy(sqlite_template, tmp_path / "i18n.sqlite")


def with_i18n(app: Flask) -> Flask:
    """Bind Babel unless the app factory already does (it is meant to)."""
    if "babel" not in app.extensions:
        i18n.init_app(app)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return with_i18n(app).test_client()


def text(response: Any) -> str:
    """Return a response's HTML with whitespace collapsed."""
    return " ".join(response.get_data(as_text=True).split())


def submit(client: FlaskClient, site: Site, query: str = "", **fields: Any) -> Any:
    """Post a standard request through the hosted form at ``/s/<key><query>``."""
    path = f"/s/{site.site_key}{query}"
    data = standard_fields(form_token=form_token(client, path), **fields)
    return client.post(path, data=data, content_type="multipart/form-data")


def filed(response: Any) -> Ticket:
    """Return the ticket an answer page reports."""
    assert response.status_code == 200, response.get_data(as_text=True)
    reference = re.search(r"SUP-\d+", response.get_data(as_text=True))
    assert reference, "no reference on the answer page"
    ticket = tickets.find_by_reference(reference.group(0))
    assert ticket is not None
    return ticket


# Catalogs


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Extract the messages from the sources now, as the README's command does."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg",
         "-o", str(pot), "supportwidget"],
        cwd=ROOT, check=True, timeout=60,
    )  # fmt: skip
    with pot.open("rb") as fp:
        return read_po(fp)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_has_a_checked_translation(extracted: Any, language: str) -> None:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        catalog = read_po(fp, locale=language)
    assert len(extracted) > 100, "extraction found too few messages: babel.cfg broken?"
    problems = []
    for message in extracted:
        if not message.id:
            continue
        translated = catalog.get(message.id)
        if translated is None or not translated.string:
            problems.append(f"untranslated: {message.id!r}")
        elif translated.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
    # Babel's checkers: the same %(name)s placeholders on both sides.
    problems += [f"{m.id!r}: {e}" for m, errors in catalog.check() for e in errors]
    assert problems == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_mo_files_match_the_po_files(language: str, tmp_path: Path) -> None:
    folder = TRANSLATIONS / language / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as fp:
        source = read_po(fp, locale=language)
    fresh = tmp_path / "messages.mo"
    with fresh.open("wb") as fp:
        write_mo(fp, source)

    def pairs(path: Path) -> dict[Any, str]:
        with path.open("rb") as fp:
            return {m.id: m.string for m in read_mo(fp) if m.id}

    assert pairs(folder / "messages.mo") == pairs(fresh), "run pybabel compile and commit"


# Pages


def test_standard_form_in_french_from_the_locale_parameter(client: FlaskClient, site: Site) -> None:
    page = text(client.get(f"/s/{site.site_key}?embed=1&locale=fr"))
    assert '<html lang="fr" dir="ltr">' in page
    assert '<h1 id="form-title">Créer un ticket</h1>' in page
    for label in ("Objet", "Description", "Votre nom", "Votre e-mail", "Pour le (facultatif)"):
        assert f">{label}</label>" in page
    assert "sont des urgences" in page and "signaler une urgence</a>" in page
    # The language survives the POST and the link to the emergency form.
    assert f'action="/s/{site.site_key}?embed=1&amp;locale=fr"' in page
    assert f'href="/s/{site.site_key}/emergency?embed=1&amp;locale=fr"' in page
    # form.js gets its messages in French from the page's configuration.
    assert '"capture": "Capturer cette page"' in page


def test_form_js_messages_follow_each_request_language(client: FlaskClient, site: Site) -> None:
    # The messages are translated once per language and kept: never one language's for another.
    expected = {
        "en": '"capture": "Capture this page"',
        "fr": '"capture": "Capturer cette page"',
        "de": '"remove": "Entfernen"',
    }
    for language in ("en", "fr", "en", "de", "fr"):
        page = text(client.get(f"/s/{site.site_key}?locale={language}"))
        assert expected[language] in page
        assert all(other not in page for lang, other in expected.items() if lang != language)


def test_standard_form_in_german_from_accept_language(client: FlaskClient, site: Site) -> None:
    headers = {"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"}
    page = text(client.get(f"/s/{site.site_key}", headers=headers))
    assert '<html lang="de" dir="ltr">' in page
    assert ">Betreff</label>" in page and ">Ihr Name</label>" in page
    assert "sind Notfälle" in page and "Notfall melden</a>" in page
    emergency = text(client.get(f"/s/{site.site_key}/emergency", headers=headers))
    assert ">Website scheint gehackt</label>" in emergency
    assert "Bereitschaftsteam alarmieren" in emergency


def test_validation_messages_in_german(client: FlaskClient, site: Site) -> None:
    response = submit(client, site, "?locale=de", subject="", email="not-an-address")
    assert response.status_code == 422
    page = text(response)
    assert "Bitte korrigieren Sie die markierten Felder." in page
    assert "Bitte geben Sie einen kurzen Betreff an." in page
    assert "Bitte geben Sie eine gültige E-Mail-Adresse an." in page
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0


@pytest.mark.parametrize(
    ("language", "message"),
    [
        (
            "fr",
            "Veuillez écrire ceci sur une seule ligne, "
            "sans saut de ligne ni caractère de contrôle.",
        ),
        ("de", "Bitte schreiben Sie dies in eine Zeile, ohne Zeilenumbrüche oder Steuerzeichen."),
    ],
)
def test_a_subject_on_two_lines_is_refused_in_the_page_language(
    client: FlaskClient, site: Site, language: str, message: str
) -> None:
    response = submit(client, site, f"?locale={language}", subject="Broken\r\nBcc: x@example.com")
    assert response.status_code == 422
    assert message in text(response)


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("fr", "N&#39;est pas une date valide."),
        ("de", "Kein gültiges Datum."),
        ("en", "Not a valid date value."),
    ],
)
def test_wtforms_own_messages_follow_the_page_language_request_after_request(
    client: FlaskClient, site: Site, language: str, message: str
) -> None:
    # WTForms' catalog is loaded once per language: one language must not leak into the next.
    for query in (f"?locale={language}", "?locale=en" if language != "en" else "?locale=fr"):
        submit(client, site, query, needed_by="31-31-2020")
    page = text(submit(client, site, f"?locale={language}", needed_by="31-31-2020"))
    assert message in page


def test_error_page_for_a_wrong_link_in_french(client: FlaskClient, site: Site) -> None:
    response = client.get("/s/no-such-key?locale=fr")
    assert response.status_code == 404
    page = text(response)
    assert "<h1>Page introuvable</h1>" in page
    assert "Il n’y a pas de formulaire d’assistance à cette adresse." in page


def test_unsupported_locale_falls_back_to_english_left_to_right(
    client: FlaskClient, site: Site
) -> None:
    page = text(client.get(f"/s/{site.site_key}?locale=ar"))
    assert '<html lang="en" dir="ltr">' in page
    assert '<h1 id="form-title">Create a ticket</h1>' in page
    assert "locale=ar" not in page
    # Were Arabic offered, its pages would be right-to-left: the direction comes from CLDR.
    assert i18n.text_direction("ar") == "rtl" and i18n.text_direction("he") == "rtl"
    assert i18n.text_direction("fr") == "ltr"


def test_form_css_uses_logical_sides_only() -> None:
    css = (ROOT / "supportwidget" / "static" / "form.css").read_text()
    physical = re.findall(
        r"(?:margin|padding|border)-(?:left|right)|text-align:\s*(?:left|right)|float:", css
    )
    assert physical == [], "use margin-inline-start etc. so right-to-left pages mirror"


def test_staff_pages_stay_english(client: FlaskClient, site: Site) -> None:
    page = text(client.get("/dashboard/login", headers={"Accept-Language": "fr"}))
    assert "Staff sign-in" in page and "Sign in" in page


def test_answer_page_promises_sla_times_in_french(client: FlaskClient, site: Site) -> None:
    plan = SlaPlan(
        name="Or", timezone="Europe/Paris", hours="mon-fri 09:00-17:30",
        first_response_minutes=240, resolution_minutes=960,
    )  # fmt: skip
    site.client.sla_plan = plan
    site.client.sla_start = date(2020, 1, 1)
    db.session.commit()
    response = submit(client, site, "?embed=1&locale=fr")
    ticket = filed(response)
    page = text(response)
    assert "Merci — nous avons bien reçu votre demande" in page
    assert "Votre référence : <strong>SUP-" in page
    due = ticket.first_response_due.astimezone(ZoneInfo("Europe/Paris"))
    promise = re.search(
        rf"Première réponse d’ici le ({FRENCH_DAYS}) (\d+) ({FRENCH_MONTHS}), (\d\d:\d\d)"
        r" — votre contrat Or\. Objectif de résolution : .+ \(heures de Europe/Paris\)\.",
        page,
    )
    assert promise, page
    assert int(promise.group(2)) == due.day and promise.group(4) == f"{due:%H:%M}"
    # The status page keeps the language the request was filed in.
    status = re.search(r'href="(/t/[^"]+)"', page)
    assert status and "Première réponse" in text(client.get(status.group(1)))


# E-mail


def by_recipient(messages: list[Any]) -> dict[str, Any]:
    return {m["To"]: m for m in messages}


def body(message: Any) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def a_client_contact(site: Site, address: str = "jane@example.com") -> None:
    """Make the requester a contact of the client: mail to them may repeat their words."""
    site.client.emails = [*site.client.emails, address]
    db.session.commit()


def test_requester_mail_in_ticket_language_staff_mail_in_english(
    client: FlaskClient, site: Site, smtp_server: Any
) -> None:
    a_client_contact(site)
    ticket = filed(submit(client, site, "?locale=de"))
    assert ticket.locale == "de"
    mail = by_recipient(smtp_server.wait_for(4))
    requester = mail["jane@example.com"]
    assert (
        requester["Subject"] == f"[{ticket.reference}] Wir haben Ihre Anfrage erhalten: "
        "Contact form sends no e-mail"
    )
    assert f"Vielen Dank, wir haben Ihre Anfrage {ticket.reference} erhalten." in body(requester)
    assert "Wie es weitergeht: Wir bearbeiten Anfragen" in body(requester)
    html = requester.get_body(("html",)).get_content()
    assert '<html lang="de">' in html and "Guten Tag Jane Owner," in html
    staff = mail["alice@agency.test"]
    assert "standard request" in body(staff) and "No SLA: first come, first served." in body(staff)
    assert "Anfrage" not in body(staff)

    # Later e-mails, written by an English-speaking member of staff, stay in German.
    smtp_server.clear()
    alice = db.session.scalar(sa.select(Staff).where(Staff.email == "alice@agency.test"))
    updates.change_status(ticket, alice, "waiting_on_client")
    status = by_recipient(smtp_server.wait_for(1))["jane@example.com"]
    assert status["Subject"].startswith(f"[{ticket.reference}] Wartet auf Sie:")
    assert "Wir benötigen etwas von Ihnen" in body(status)


def test_english_request_gets_english_mail(
    client: FlaskClient, site: Site, smtp_server: Any
) -> None:
    a_client_contact(site)
    ticket = filed(submit(client, site))
    assert ticket.locale == "en"
    requester = by_recipient(smtp_server.wait_for(4))["jane@example.com"]
    assert requester["Subject"].startswith(f"[{ticket.reference}] We have your request:")
    assert f"Thank you, we have your request {ticket.reference}." in body(requester)


def test_mail_to_an_unverified_requester_in_german_repeats_nothing(
    client: FlaskClient, site: Site, smtp_server: Any
) -> None:
    ticket = filed(submit(client, site, "?locale=de"))
    requester = by_recipient(smtp_server.wait_for(4))["jane@example.com"]
    assert requester["Subject"] == f"[{ticket.reference}] Wir haben Ihre Anfrage erhalten"
    assert body(requester).startswith("Guten Tag, Vielen Dank")
    assert "Contact form" not in body(requester) and "Jane" not in body(requester)
    smtp_server.clear()
    alice = db.session.scalar(sa.select(Staff).where(Staff.email == "alice@agency.test"))
    updates.change_status(ticket, alice, "resolved")
    status = by_recipient(smtp_server.wait_for(1))["jane@example.com"]
    assert status["Subject"] == f"[{ticket.reference}] Gelöst"
    assert f"Ihre Anfrage {ticket.reference} hat jetzt den Status: Gelöst." in body(status)


# Chromium


@pytest.mark.slow
@pytest.mark.browser
def test_widget_iframe_shows_french_form_for_data_locale(
    live_server: LiveService, page: Page
) -> None:
    with_i18n(live_server.app)
    page.goto(live_server.host.add("/fr", live_server.embed(locale="fr")))
    page.get_by_role("button", name="Créer un ticket ?").click()
    form = page.frame_locator("iframe")
    expect(form.get_by_role("heading", name="Créer un ticket")).to_be_visible()
    expect(form.locator("html")).to_have_attribute("lang", "fr")
    form.get_by_label("Objet").fill("Le bouton de paiement ne fait rien")
    form.get_by_label("Description").fill("Depuis ce matin, le bouton de paiement ne marche plus.")
    form.get_by_label("Votre nom").fill("Jeanne")
    form.get_by_label("Votre e-mail").fill("jeanne@example.com")
    # form.js's own button speaks French too: its text comes from the page's configuration.
    expect(form.get_by_role("button", name="Capturer cette page")).to_be_visible()
    form.get_by_role("button", name="Envoyer la demande").click()
    expect(form.locator("#sw-result")).to_contain_text("Votre référence")

    def newest_locale() -> str | None:
        return db.session.scalars(sa.select(Ticket.locale).order_by(Ticket.id.desc())).first()

    assert live_server.query(newest_locale) == "fr"


@pytest.mark.browser
def test_spanish_end_to_end_widget_form_answer_and_mail(
    live_server: LiveService, page: Page
) -> None:
    with_i18n(live_server.app)
    page.goto(live_server.host.add("/es", live_server.embed(locale="es")))
    page.get_by_role("button", name="¿Crear un ticket?").click()
    expect(page.get_by_role("dialog", name="Contactar con soporte")).to_be_visible()
    expect(
        page.get_by_role("button", name="¿Emergencia? Sitio caído / hackeado / roto")
    ).to_be_visible()
    form = page.frame_locator("iframe")
    expect(form.get_by_role("heading", name="Crear un ticket")).to_be_visible()
    expect(form.locator("html")).to_have_attribute("lang", "es")
    expect(form.locator("#screenshots-hint")).to_contain_text("También puede pegar o soltar")
    form.get_by_role("button", name="Enviar solicitud").click()
    expect(form.locator("#subject-error")).to_have_text("Indique un asunto breve.")
    form.get_by_label("Asunto").fill("El botón de pago no hace nada")
    form.get_by_label("Descripción").fill("Desde esta mañana el botón de pago no funciona.")
    form.get_by_label("Su nombre").fill("Juana")
    form.get_by_label("Su correo electrónico").fill("juana@example.com")
    form.get_by_label("Necesario para (opcional)").fill("2099-01-15")
    form.get_by_role("button", name="Enviar solicitud").click()
    result = form.locator("#sw-result")
    expect(result).to_contain_text("Su referencia")
    expect(form.locator("dl.summary")).to_contain_text("jue 15 ene 2099")
    reference = result.get_attribute("data-reference")
    expect(page.get_by_text(f"Solicitud {reference} enviada.")).to_be_visible()

    def newest_locale() -> str | None:
        return db.session.scalars(sa.select(Ticket.locale).order_by(Ticket.id.desc())).first()

    assert live_server.query(newest_locale) == "es"
    mail = by_recipient(live_server.smtp.wait_for(3))["juana@example.com"]
    assert mail["Subject"].startswith(f"[{reference}] Hemos recibido su solicitud")
    assert f"Gracias, hemos recibido su solicitud {reference}." in body(mail)
