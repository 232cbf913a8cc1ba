"""The widget loader as browsers get it: static/widget.js minified, with every requester
language's strings from the gettext catalogs, built once per process."""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import rjsmin
from flask import current_app
from flask_babel import gettext

from supportwidget.models import Site
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
        "down": gettext("Support cannot be reached just now."),
        "blocked": gettext("This page's settings block the support form."),
        "setup": gettext("This button is not set up for this page."),
        "newTab": gettext("Open the form in a new tab"),
        "call": gettext("Or call or e-mail your agency:"),
        "sent": gettext("Request %(reference)s sent.", reference="{ref}"),
    }


def refusal(site: Site | None, origin: str | None) -> str | None:
    """Say why a site's form cannot open on a page from `origin` (None when it can)."""
    if site is None:
        return "unknown"
    if not site.enabled:
        return "disabled"
    # Origins as browsers send them: scheme://host[:port], whatever path the setting carries.
    allowed = {"{0.scheme}://{0.netloc}".format(urlsplit(o)) for o in site.allowed_origins}
    if origin and origin not in allowed:
        return "origin"
    return None


def catalog_strings() -> dict[str, dict[str, str]]:
    """Return the widget's text in every requester language, keyed by language."""
    strings = {}
    for locale in i18n.LOCALES:
        with i18n.language(locale):
            strings[locale] = widget_strings()
    return strings


# The loader's local names, shortened when served to keep it within its gzip budget (rjsmin
# removes space and comments but renames nothing). Only names never used as a property or a
# shorthand object key belong here (an object key "name:" is left alone), and none may appear
# in a regular expression literal (only string literals are told apart); node --check and the
# browser tests run the shortened script.
LOCAL_NAMES = (
    "addStyles buildDialog closeButton colourLauncher draftKey element formMessage formReady "
    "formUrl hostContext keepDraft loadForm luminance mountLauncher readDraft sendContext "
    "showPanel showTab showingEmergency siteKey submitted textColourOn weights listen heading "
    "overlay launcher shadow options service notice panel timer queued PREFIX text say tabs "
    "frame stub locale script emergency standalone message event command query first last "
    "dialog close open start warn link later why about phone email sheet node attributes "
    "children handler tag color value index sum linear host aboutSite siteSettings"
).split()
# String literals (left alone) or anything else (where names are shortened).
LITERAL = re.compile(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`)""")
NAME = re.compile(r"(?<![\w$.])(" + "|".join(LOCAL_NAMES) + r")(?![\w$])")


def shorten(minified: str) -> str:
    """Rename LOCAL_NAMES to one- or two-letter names no other identifier uses."""
    taken = set(re.findall(r"[A-Za-z_$][\w$]*", minified))
    letters = string.ascii_letters
    spare = (n for n in [*letters, *(a + b for a in letters for b in letters)] if n not in taken)
    short = {name: next(spare) for name in LOCAL_NAMES}

    def rename(found: re.Match[str]) -> str:
        code, start, end = found.string, found.start(), found.end()
        is_key = code[start - 1 : start] in ("{", ",") and code[end : end + 1] == ":"
        return found.group(1) if is_key else short[found.group(1)]

    parts = LITERAL.split(minified)
    for index in range(0, len(parts), 2):
        parts[index] = NAME.sub(rename, parts[index])
    return "".join(parts)


def build(source: str, strings: dict[str, dict[str, str]]) -> bytes:
    """Return the loader as served: the source minified, the strings in its placeholder."""
    minified = shorten(rjsmin.jsmin(source))
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
