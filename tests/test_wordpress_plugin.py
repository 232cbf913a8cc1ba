"""The WordPress plugin's files: what ships, its headers, its translations (no WordPress needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

WORDPRESS = Path(__file__).parent.parent / "examples" / "wordpress"
PLUGIN = WORDPRESS / "supportwidget"
LANGUAGES = PLUGIN / "languages"
# The widget's languages (en is the source), and Spanish.
LOCALES = ("fr_FR", "de_DE", "es_ES")
XGETTEXT = [
    "xgettext",
    "--language=PHP",
    "--from-code=UTF-8",
    "--add-comments=translators:",
    *(f"-k{k}" for k in ("__", "_e", "esc_html__", "esc_html_e", "esc_attr__", "esc_attr_e")),
    "-k_x:1,2c",
    "-k_n:1,2",
    "--output=-",
]
needs_php = pytest.mark.skipif(
    shutil.which("php") is None, reason="PHP not installed (CI installs Debian's php-cli)"
)


def header(path: Path, field: str) -> str:
    """Return a WordPress header field ('Requires at least') of a plugin file or readme."""
    match = re.search(rf"^[ \t/*#@]*{re.escape(field)}:[ \t]*(.+)$", path.read_text(), re.M)
    assert match, f"{path.name} has no {field!r} header"
    return match.group(1).strip()


@needs_php
def test_every_php_file_passes_php_lint():
    files = sorted(WORDPRESS.rglob("*.php"))
    assert len(files) >= 12
    for path in files:
        result = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_plugin_ships_no_tests_and_every_file_refuses_direct_requests():
    assert not [p for p in PLUGIN.rglob("*") if "test" in p.name.lower()]
    for path in PLUGIN.rglob("*.php"):
        assert "if ( ! defined( 'ABSPATH' )" in path.read_text(), f"{path} has no ABSPATH guard"


def test_headers_agree_and_name_what_the_handbook_asks_for():
    main, readme = PLUGIN / "supportwidget.php", PLUGIN / "readme.txt"
    version = header(main, "Version")
    assert f"define( 'SUPPORTWIDGET_VERSION', '{version}' );" in main.read_text()
    assert header(readme, "Stable tag") == version
    assert header(main, "Requires at least") == header(readme, "Requires at least") == "6.1"
    assert header(main, "Requires PHP") == header(readme, "Requires PHP")
    assert header(readme, "Tested up to") == "6.1"
    assert header(main, "Text Domain") == "supportwidget"
    assert header(main, "Domain Path") == "/languages"
    assert header(main, "Update URI") == "false"
    assert "= What is sent to the support service =" in readme.read_text()


def catalog(path: Path) -> dict[str, str]:
    """Return a .po or .mo file's translations, msgid to msgstr."""
    with path.open("rb") as file:
        messages = (read_mo if path.suffix == ".mo" else read_po)(file)
    return {m.id: m.string for m in messages if m.id}


needs_gettext = pytest.mark.skipif(
    shutil.which("xgettext") is None, reason="gettext missing (.ci/run installs it)"
)


@needs_gettext
def test_the_template_holds_every_string_of_the_plugin():
    sources = sorted(str(p.relative_to(PLUGIN)) for p in PLUGIN.rglob("*.php"))
    result = subprocess.run([*XGETTEXT, *sources], cwd=PLUGIN, capture_output=True, check=True)
    extracted = {m.id for m in read_po(iter(result.stdout.splitlines(keepends=True))) if m.id}
    assert extracted == set(catalog(LANGUAGES / "supportwidget.pot"))


@pytest.mark.parametrize("locale", LOCALES)
def test_each_language_translates_every_string_and_its_mo_is_compiled(locale):
    template = set(catalog(LANGUAGES / "supportwidget.pot"))
    po = catalog(LANGUAGES / f"supportwidget-{locale}.po")
    assert set(po) == template
    assert all(po.values()), [msgid for msgid, text in po.items() if not text]
    for msgid, text in po.items():  # the same placeholders, or sprintf() breaks
        assert sorted(re.findall(r"%\d?\$?[sd]", msgid)) == sorted(re.findall(r"%\d?\$?[sd]", text))
    assert catalog(LANGUAGES / f"supportwidget-{locale}.mo") == po
