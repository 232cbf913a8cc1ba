"""Configuration: config.py holds every key the code reads, and the README documents each one."""

from __future__ import annotations

import re
from pathlib import Path

from supportwidget import config, create_app

ROOT = Path(__file__).parent.parent
# Keys Flask and its extensions define and default themselves; the code may read them too.
FRAMEWORK_KEYS = {
    "TESTING",
    "WTF_CSRF_ENABLED",
    "WTF_CSRF_FIELD_NAME",
    "WTF_CSRF_CHECK_DEFAULT",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_SECURE",
}


def readme_keys() -> set[str]:
    """Return every key the README's Configuration section names in backticks."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return {
        key for key in re.findall(r"`([A-Z][A-Z0-9_]+)`", section) if "SUPPORTWIDGET" not in key
    }


def keys_the_code_reads() -> dict[str, str]:
    """Return each config key read anywhere in the package, with one file that reads it."""
    reads = re.compile(
        r"(?:config|cfg)(?:\[|\.get\()\s*\"([A-Z][A-Z0-9_]+)\"|_config_str\(app, \"([A-Z_]+)\""
    )
    found: dict[str, str] = {}
    for path in (ROOT / "supportwidget").rglob("*.py"):
        for match in reads.finditer(path.read_text()):
            found.setdefault(match.group(1) or match.group(2), str(path.relative_to(ROOT)))
    return found


def test_the_readme_documents_exactly_the_keys_of_config_py():
    keys = set(config.defaults())
    assert sorted(keys - readme_keys()) == [], "in config.py but not in the README"
    assert sorted(readme_keys() - keys) == [], "in the README but not in config.py"


def test_every_key_the_code_reads_has_its_default_in_config_py():
    missing = {
        key: where
        for key, where in keys_the_code_reads().items()
        if key not in config.defaults() and key not in FRAMEWORK_KEYS
    }
    assert missing == {}


def test_no_default_is_given_at_the_point_of_use():
    # One style: `config["KEY"]`, never `config.get("KEY", default)` or `setdefault`.
    second_default = re.compile(r"config\.(?:get|setdefault)\(\s*\"[A-Z_]+\"\s*,")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "supportwidget").rglob("*.py")
        if second_default.search(path.read_text())
    ]
    assert offenders == []


def test_unset_paths_default_to_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray instance/config.py or environment decides for us
    for key in ("SQLALCHEMY_DATABASE_URI", "QUEUE_URL", "UPLOAD_FOLDER", "SECRET_KEY"):
        monkeypatch.delenv(f"SUPPORTWIDGET_{key}", raising=False)
    instance = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(instance)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'supportwidget.sqlite'}"
    assert app.config["QUEUE_URL"] == f"sqlite:///{instance / 'queue.sqlite'}"
    assert app.config["UPLOAD_FOLDER"] == str(instance / "uploads")
    assert app.config["SECRET_KEY"] == (instance / "secret_key").read_text().strip()
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024 * 1024
