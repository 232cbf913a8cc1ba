"""widget.js as served: minified readable source, every language's strings from the catalogs,
a strong ETag, and a byte budget. Fast: no browser (test_widget_browser.py drives it)."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Flask

from supportwidget.intake import widget
from supportwidget.models import Client, Site, db
from supportwidget.platform import i18n

from conftest import make_app

ROOT = Path(__file__).parent.parent
SOURCE = ROOT / "supportwidget" / "static" / "widget.js"
TRANSLATIONS = ROOT / "supportwidget" / "translations"
# widget.js as served, gzip -9 (README "Measured").
WIDGET_BUDGET = 4096
STRINGS_AT = "const STRINGS="


def gzipped(body: bytes) -> int:
    """Return the size of ``body`` under gzip -9."""
    return len(gzip.compress(body, 9))


def served_strings(script: bytes) -> dict[str, dict[str, str]]:
    """Return the strings table a served widget.js carries."""
    text = script.decode()
    strings, _ = json.JSONDecoder().raw_decode(text, text.index(STRINGS_AT) + len(STRINGS_AT))
    return strings


def with_a_fourth_language(script: bytes) -> bytes:
    """Return ``script`` as it would be served with one more language as long as its longest.

    The extra language is the longest one in rot13: the same length and letter mix, but no
    text gzip could reuse from the others, so a real language should cost no more.
    """
    strings = served_strings(script)
    longest = max(strings.values(), key=lambda texts: len("".join(texts.values()).encode()))
    extra = {name: codecs.encode(text, "rot13") for name, text in longest.items()}
    return widget.build(SOURCE.read_text(encoding="utf-8"), {**strings, "xx": extra})


def budget_report(script: bytes) -> str:
    """Describe the served script's size against its budget, now and with a 4th language."""
    size, fourth = gzipped(script), gzipped(with_a_fourth_language(script))
    return (
        f"widget.js as served, gzip -9: {size:,} B of a {WIDGET_BUDGET:,} B budget "
        f"({WIDGET_BUDGET - size:,} B left) with {', '.join(served_strings(script))}; "
        f"with a 4th language of similar length: {fourth:,} B ({WIDGET_BUDGET - fourth:,} B left)"
    )


@pytest.fixture(scope="module")
def widget_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp = tmp_path_factory.mktemp("widget")
    app = make_app(f"sqlite:///{tmp / 'w.sqlite'}", tmp)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def served(widget_app: Flask) -> bytes:
    response = widget_app.test_client().get("/widget.js")
    assert response.status_code == 200
    return response.get_data()


def test_widget_js_is_minified_within_its_byte_budget(served: bytes) -> None:
    print("\n" + budget_report(served))
    source = SOURCE.read_bytes()
    # The readable source's comments and indentation are not sent.
    assert b"// " not in served and b"\n  " not in served
    assert len(served) < len(source) * 0.8
    assert gzipped(served) <= WIDGET_BUDGET


def test_served_widget_js_parses(served: bytes, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the served widget.js was not syntax-checked")
    script = tmp_path / "widget.js"
    script.write_bytes(served)
    checked = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def catalog_text(locale: str, english: str) -> str:
    """Return the compiled catalog's translation of one of the widget's English strings."""
    catalog = Translations.load(str(TRANSLATIONS), [locale])
    return catalog.gettext(english.replace("{ref}", "%(reference)s")).replace(
        "%(reference)s", "{ref}"
    )


def test_widget_js_carries_every_language_from_the_catalogs(served: bytes) -> None:
    strings = served_strings(served)
    assert list(strings) == list(i18n.LOCALES)
    english = strings["en"]
    assert english["label"] == "Create a ticket?" and english["sent"] == "Request {ref} sent."
    for locale in i18n.LOCALES[1:]:
        assert strings[locale].keys() == english.keys()
        for name, text in english.items():
            # Translated, and exactly as the catalog has it.
            assert strings[locale][name] == catalog_text(locale, text) != text, (locale, name)


def test_widget_js_revalidates_with_a_strong_etag(widget_app: Flask, served: bytes) -> None:
    client = widget_app.test_client()
    response = client.get("/widget.js")
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    etag, weak = response.get_etag()
    assert not weak and etag == hashlib.sha256(served).hexdigest()
    again = client.get("/widget.js", headers={"If-None-Match": f'"{etag}"'})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["Cache-Control"] == "public, max-age=3600"
    assert client.get("/widget.js", headers={"If-None-Match": '"other"'}).status_code == 200


# A fresh process: Flask-Babel reads each catalog once per process.
RESTARTED = """
import json, sys
from supportwidget import create_app
response = create_app(json.loads(sys.argv[1])).test_client().get("/widget.js")
sys.stdout.buffer.write(response.headers["ETag"].encode() + b"\\n" + response.get_data())
"""


def serve_after_restart(translations: Path, tmp_path: Path) -> tuple[str, bytes]:
    """Start the service in a new process on ``translations``; return widget.js's ETag and body."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'restart.sqlite'}",
        "QUEUE_URL": "memory://",
        "BABEL_TRANSLATION_DIRECTORIES": str(translations),
    }
    run = subprocess.run(
        [sys.executable, "-c", RESTARTED, json.dumps(config)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    etag, body = run.stdout.split(b"\n", 1)
    return etag.decode(), body


def edit_catalog(translations: Path, locale: str, msgid: str, msgstr: str) -> None:
    """Change one translation in a copy of the catalogs and compile it."""
    folder = translations / locale / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as po:
        catalog = read_po(po)
    catalog[msgid].string = msgstr
    with open(folder / "messages.mo", "wb") as mo:
        write_mo(mo, catalog)


@pytest.mark.slow
def test_a_catalog_change_reaches_the_widget_after_a_restart(
    widget_app: Flask, served: bytes, tmp_path: Path
) -> None:
    copy = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, copy)
    # Every worker process serves the same bytes under the same ETag.
    same_etag, same_body = serve_after_restart(copy, tmp_path)
    assert same_body == served
    assert same_etag == widget_app.test_client().get("/widget.js").headers["ETag"]

    edit_catalog(copy, "fr", "Close", "Fermer la fenêtre")
    etag, body = serve_after_restart(copy, tmp_path)
    strings = served_strings(body)
    assert strings["fr"]["close"] == "Fermer la fenêtre"
    assert strings["de"] == served_strings(served)["de"]
    # A new ETag: browsers holding the old script fetch the new one.
    assert etag != same_etag


def test_widget_json_says_why_a_form_cannot_open_and_gives_the_site_s_look(
    widget_app: Flask,
) -> None:
    widget_app.config.update(AGENCY_PHONE="+44 20 7946 0000", AGENCY_EMAIL="help@agency.test")
    with widget_app.app_context():
        client_row = Client(name="Acme", emails=["o@acme.example"])
        site = Site(
            client=client_row,
            name="acme",
            url="https://acme.example",
            allowed_origins=["https://acme.example/"],
            label="Need help?",
            color="#ffd400",
        )
        db.session.add(site)
        db.session.commit()
        key = site.site_key
    http = widget_app.test_client()
    contacts = {"phone": "+44 20 7946 0000", "email": "help@agency.test"}

    ok = http.get(f"/s/{key}/widget.json", headers={"Origin": "https://acme.example"})
    assert ok.status_code == 200
    assert ok.get_json() == {"ok": True, "label": "Need help?", "color": "#ffd400", **contacts}
    # The site's settings are readable by its own origins only.
    assert ok.headers["Access-Control-Allow-Origin"] == "https://acme.example"

    elsewhere = http.get(f"/s/{key}/widget.json", headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403
    assert elsewhere.get_json() == {"ok": False, "reason": "origin", **contacts}
    assert elsewhere.headers["Access-Control-Allow-Origin"] == "*"

    unknown = http.get("/s/nope/widget.json", headers={"Origin": "https://acme.example"})
    assert unknown.status_code == 404
    assert unknown.get_json() == {"ok": False, "reason": "unknown", **contacts}

    with widget_app.app_context():
        db.session.get(Site, site.id).enabled = False
        db.session.commit()
    off = http.get(f"/s/{key}/widget.json", headers={"Origin": "https://acme.example"})
    assert off.status_code == 403 and off.get_json()["reason"] == "disabled"


def test_shortening_leaves_strings_and_properties_alone() -> None:
    code = "const panel='panel';x.panel=panel;f({panel:1},\"showPanel\");function showPanel(){}"
    short = widget.shorten(code)
    assert "'panel'" in short and "x.panel=" in short and "{panel:1}" in short
    assert '"showPanel"' in short and "function showPanel" not in short
    assert "=panel;" not in short
