"""The widget loader as browsers get it: static/widget.js minified, with every requester
language's strings from the gettext catalogs, built once per process."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import rjsmin
from flask import current_app
from flask_babel import gettext

from supportwidget.platform import i18n

SOURCE = "widget.js"
# The readable source names this where the strings go; it is replaced after minifying.
PLACEHOLDER = "STRINGS_FROM_CATALOGS"
EXTENSION = "supportwidget.widget"


@dataclass(frozen=True)
class Script:
    """The loader as served: its bytes and their strong ETag."""

    body: bytes
    etag: str


def widget_strings() -> dict[str, str]:
    """Return the widget's text in the current language; '{ref}' marks the ticket reference."""
    return {
        "label": gettext("Create a ticket?"),
        "title": gettext("Contact support"),
        "close": gettext("Close"),
        "request": gettext("Request"),
        "emergency": gettext("Emergency? Site down / hacked / broken"),
        "frame": gettext("Support request form"),
        "down": gettext("Support cannot be reached. Please call or e-mail your agency."),
        "blocked": gettext("The form cannot be shown here: open it in a new tab."),
        "sent": gettext("Request %(reference)s sent.", reference="{ref}"),
    }


def catalog_strings() -> dict[str, dict[str, str]]:
    """Return the widget's text in every requester language, keyed by language."""
    strings = {}
    for locale in i18n.LOCALES:
        with i18n.language(locale):
            strings[locale] = widget_strings()
    return strings


def build(source: str, strings: dict[str, dict[str, str]]) -> bytes:
    """Return the loader as served: the source minified, the strings in its placeholder."""
    minified = rjsmin.jsmin(source)
    if minified.count(PLACEHOLDER) != 1:
        raise ValueError(f"{SOURCE} must name {PLACEHOLDER} exactly once")
    # JSON is a JavaScript expression; UTF-8 rather than \u escapes keeps it small.
    table = json.dumps(strings, ensure_ascii=False, separators=(",", ":"))
    return minified.replace(PLACEHOLDER, table).encode()


def served_script() -> Script:
    """Return this app's loader, built on the first request and kept for the process's life."""
    script: Script | None = current_app.extensions.get(EXTENSION)
    if script is None:
        # Flask-Babel reads each catalog once per process: a changed catalog shows after a
        # restart, and then with a new ETag, so browsers fetch it again.
        source = Path(current_app.root_path, "static", SOURCE).read_text(encoding="utf-8")
        body = build(source, catalog_strings())
        script = Script(body, hashlib.sha256(body).hexdigest())
        current_app.extensions[EXTENSION] = script
    return script
