"""Languages: the requester reads their language (vocab.Language); staff read English.

The locale comes from ``?locale=`` (the widget passes its ``data-locale``), else the
browser's ``Accept-Language``, else English. Only the requester's pages (``/s/…``,
``/t/…``) are negotiated: the dashboard, the API, webhooks and staff e-mail stay English.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.dates import format_timedelta
from babel.numbers import format_currency
from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, refresh

from supportwidget.vocab import DEFAULT_LANGUAGE, EmergencyCategory, Language, TicketStatus

babel = Babel()

DEFAULT_LOCALE = DEFAULT_LANGUAGE.value
LOCALES = Language.values()
# Requester-facing paths: the hosted forms, their answers and the status page.
PUBLIC_PREFIXES = ("/s/", "/t/")


def supported(value: str | None) -> str | None:
    """Return the supported language of a tag ('fr-CA' -> 'fr'), or None."""
    if not value:
        return None
    language = value.replace("_", "-").split("-")[0].strip().lower()
    return language if language in LOCALES else None


def select_locale() -> str:
    """Choose the request's locale: ?locale=, else Accept-Language, else English."""
    if not has_request_context() or not request.path.startswith(PUBLIC_PREFIXES):
        return DEFAULT_LOCALE
    asked = supported(request.args.get("locale"))
    if asked:
        return asked
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def current_language() -> str:
    """Return the language in use now ('en' outside a request)."""
    locale = get_locale()
    return supported(locale.language if locale else None) or DEFAULT_LOCALE


def _language() -> Language:
    """Return the language in use now, with its date patterns."""
    return Language.lookup(current_language()) or DEFAULT_LANGUAGE


def explicit_locale() -> str | None:
    """Return the supported ?locale= of this request, to carry into links and form actions."""
    return supported(request.args.get("locale")) if has_request_context() else None


def text_direction(language: str) -> str:
    """Return 'rtl' or 'ltr' for a language, from CLDR's character order."""
    try:
        order = Locale.parse(language).character_order
    except (ValueError, TypeError):
        return "ltr"
    return "rtl" if order == "right-to-left" else "ltr"


def format_due(moment: datetime, timezone: str) -> str:
    """Return a due time in the current language and the plan's timezone."""
    language = _language()
    return babel_datetime(
        moment, language.due_pattern, tzinfo=ZoneInfo(timezone), locale=language.value
    )


def format_day(day: date) -> str:
    """Return a calendar date in the current language: 'Mon 1 Mar 2027'."""
    language = _language()
    return babel_date(day, language.day_pattern, locale=language.value)


def local_time(moment: datetime, timezone: str, time_only: bool = False) -> str:
    """Return an instant in the current language and a zone, named: '… 11:30 Europe/London'."""
    language = _language()
    pattern = "HH:mm" if time_only else language.sent_pattern
    zone = ZoneInfo(timezone)
    return f"{babel_datetime(moment, pattern, tzinfo=zone, locale=language.value)} {timezone}"


def utc_time(moment: datetime, time_only: bool = False) -> str:
    """Return a stored (UTC) instant in the current language: 'Mon 30 Nov 2026, 11:30 UTC'."""
    return local_time(moment, "UTC", time_only)


def format_minutes(minutes: int) -> str:
    """Return a span of minutes in the current language: '30 minutes', '2 hours', '90 minutes'."""
    language = current_language()
    if minutes >= 60 and minutes % 60 == 0:
        return format_timedelta(timedelta(hours=minutes // 60), locale=language)
    # Babel would round 90 minutes to "2 hours": say exactly what the plan promises.
    return format_timedelta(
        timedelta(minutes=minutes), granularity="minute", threshold=10**6, locale=language
    )


def format_money(amount: Decimal | int | float, currency: str | None = None) -> str:
    """Return an amount of money in the current language: '€120.00', '120,00 €'."""
    code = currency or current_app.config["CURRENCY"]
    return format_currency(amount, code, locale=current_language())


def status_name(status: str) -> str:
    """Return a ticket status as the requester reads it."""
    found = TicketStatus.lookup(status)
    return status.replace("_", " ") if found is None else str(found.requester_label)


def status_note(status: str) -> str | None:
    """Return what the requester is asked to do in a status, if anything."""
    found = TicketStatus.lookup(status)
    return None if found is None or found.requester_note is None else str(found.requester_note)


def category_name(category: str | None) -> str:
    """Return an emergency category as the requester reads it."""
    found = EmergencyCategory.lookup(category)
    return category or "" if found is None else str(found.requester_label)


@contextmanager
def language(locale: str | None) -> Iterator[None]:
    """Render inside a block in a given language (unsupported or none: English)."""
    with force_locale(supported(locale) or DEFAULT_LOCALE):
        yield


def _page_language() -> dict[str, Any]:
    language = current_language()
    return {"html_lang": language, "text_dir": text_direction(language)}


def _fresh_locale(*args: Any) -> None:
    # Tests (and CLI code) may run many requests in one app context, which shares `g`:
    # choose the locale again for each request rather than reuse the previous one.
    refresh()


def init_app(app: Flask) -> None:
    """Bind Babel to the app, with the locale selector and the template helpers."""
    babel.init_app(app, locale_selector=select_locale)
    # Templates wrap long sentences across lines: one space between words in each msgid.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals.update(
        status_name=status_name,
        status_note=status_note,
        category_name=category_name,
        explicit_locale=explicit_locale,
    )
    app.jinja_env.filters["utc_time"] = utc_time
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["day"] = format_day
    app.jinja_env.filters["money"] = format_money
    app.context_processor(_page_language)
    app.before_request(_fresh_locale)
    app.teardown_request(_fresh_locale)
