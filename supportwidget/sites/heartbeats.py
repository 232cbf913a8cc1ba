"""WordPress heartbeats: check the site's signature, keep the latest report per site, and open
a ticket once for each distinct change to the WordPress core files.

The signature (DESIGN.md §7) is `X-Supportwidget-Signature: <unix time>.<hex HMAC-SHA256(site
secret, "<unix time>" + line feed + body)>`, good for MAX_AGE seconds either side of our
clock, and only once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from supportwidget.models import HandledMessage, Site, SiteHeartbeat, Ticket, db, utcnow
from supportwidget.platform.plaintext import one_line
from supportwidget.tickets import filing
from supportwidget.watch import signals

SIGNATURE_HEADER = "X-Supportwidget-Signature"
#: Seconds a signature stays good, either side of our clock.
MAX_AGE = 300
#: The largest heartbeat body we read, in bytes.
MAX_BYTES = 256 * 1024
#: Files of each kind (modified, added, missing) a heartbeat may list.
MAX_FILES = 1000
MAX_PLUGINS = 1000
#: How many changed files the ticket lists (the site page shows them all).
FILES_IN_TICKET = 50
HEX64 = re.compile(r"[0-9a-f]{64}")
MD5 = re.compile(r"[0-9a-f]{32}")
# Signatures already used, as HandledMessage keys; kept while they could be replayed.
USED = "heartbeat:"
TYPE_NAMES = {str: "a string", int: "a whole number", dict: "an object", list: "a list"}


class HeartbeatError(Exception):
    """A heartbeat we refuse: the HTTP status, a reason the plugin can translate, the text."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass
class Report:
    """What a heartbeat says about the site, cleaned."""

    wordpress: str
    php: str
    theme: str
    plugin_version: str
    home: str
    plugins: list[dict[str, str]]
    core: dict[str, Any]


@dataclass(frozen=True)
class Received:
    """What came of a heartbeat: its site, how far its clock is from ours, any ticket."""

    site: Site
    test: bool
    clock_skew: int
    core_status: str | None = None
    ticket: Ticket | None = None


def sign(secret: str, stamp: int, body: bytes) -> str:
    """Return the signature header value for `body` signed at `stamp` (what the plugin sends)."""
    digest = hmac.new(secret.encode(), f"{stamp}\n".encode() + body, hashlib.sha256)
    return f"{stamp}.{digest.hexdigest()}"


def receive(body: bytes, signature: str | None, now: datetime | None = None) -> Received:
    """Check a heartbeat and keep it as the site's latest; a test heartbeat is only checked."""
    now = now or utcnow()
    stamp, digest = read_signature(signature)
    data = read_json(body)
    site = signed_site(data, stamp, digest, body, now)
    skew = stamp - int(now.timestamp())
    if data.get("test") is True:
        spend(digest, now)
        db.session.commit()
        return Received(site, test=True, clock_skew=skew)
    report = read_report(data)
    spend(digest, now)
    keep(site, report, stamp, now)
    db.session.commit()
    status = report.core["status"]
    ticket = alert_core_change(site, report) if status == "changed" else None
    if ticket is not None:
        # A defaced homepage seen before this heartbeat makes it an emergency now.
        signals.escalate_if_defaced(ticket)
    return Received(site, False, skew, status, ticket)


def read_signature(header: str | None) -> tuple[int, str]:
    """Return the time and HMAC of a signature header; 401 when it is missing or malformed."""
    stamp, _, digest = (header or "").strip().partition(".")
    digest = digest.lower()
    # A Unix time in ASCII digits ('²'.isdigit() is true too), a dozen at most.
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12 and HEX64.fullmatch(digest)):
        raise HeartbeatError(
            401,
            "unsigned",
            f"Sign the heartbeat: {SIGNATURE_HEADER}: <unix time>.<hex HMAC-SHA256 of the time, "
            "a line feed and the body, keyed with the site secret>.",
        )
    return int(stamp), digest


def read_json(body: bytes) -> dict[str, Any]:
    """Return the heartbeat's JSON object; 400 for anything else."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise HeartbeatError(400, "bad_json", "The heartbeat is not valid JSON (UTF-8).") from None
    if not isinstance(data, dict):
        raise HeartbeatError(400, "bad_json", "The heartbeat must be a JSON object.")
    return data


def signed_site(data: dict[str, Any], stamp: int, digest: str, body: bytes, now: datetime) -> Site:
    """Return the site whose secret signed the body, if it signed it lately."""
    site = Site.find_by_key(_field(data, "site_key", str))
    if site is None:
        raise HeartbeatError(
            404, "unknown_key", "No site has this site key: copy it from the agency's sites page."
        )
    if not site.enabled:
        raise HeartbeatError(403, "site_disabled", "This site is switched off at the agency.")
    expected = sign(site.secret, stamp, body).partition(".")[2]
    if not hmac.compare_digest(expected, digest):
        raise HeartbeatError(
            403, "bad_signature", "The signature does not match: check the site secret."
        )
    age = int(now.timestamp()) - stamp
    if abs(age) > MAX_AGE:
        raise HeartbeatError(
            403,
            "clock",
            f"The signature's time is {abs(age)} s {'old' if age > 0 else 'ahead of ours'}; "
            f"at most {MAX_AGE} s are allowed: check the server's clock.",
        )
    return site


def spend(digest: str, now: datetime) -> None:
    """Use a signature up (409 when it was used before); forget those too old to replay."""
    # A signature is good from MAX_AGE before our clock to MAX_AGE after it.
    too_old = now - timedelta(seconds=2 * MAX_AGE + 60)
    db.session.execute(
        sa.delete(HandledMessage).where(
            HandledMessage.key.startswith(USED), HandledMessage.received_at < too_old
        )
    )
    if not HandledMessage.first_time(USED + digest):
        raise HeartbeatError(
            409, "replay", "This heartbeat was received already: a signature is good once."
        )


def _typed(value: Any, kind: type, name: str) -> Any:
    """Return the value if it has the type, else refuse the heartbeat naming the field."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise HeartbeatError(400, "bad_report", f"{name} must be {TYPE_NAMES[kind]}.")
    return value


def _field(data: dict[str, Any], key: str, kind: type, name: str | None = None) -> Any:
    return _typed(data.get(key), kind, name or key)


def _text(data: dict[str, Any], key: str, limit: int, name: str | None = None) -> str:
    return one_line(_field(data, key, str, name))[:limit]


def _items(data: dict[str, Any], key: str, limit: int, name: str) -> list[Any]:
    """Return a list field, absent meaning empty; 400 for more than `limit` items."""
    items = _field(data, key, list, name) if key in data else []
    if len(items) > limit:
        raise HeartbeatError(400, "bad_report", f"{name} may list at most {limit} items.")
    return items


def read_report(data: dict[str, Any]) -> Report:
    """Return the heartbeat's versions, plugins and core check; 400 for a wrong shape."""
    theme = _field(data, "theme", dict)
    name, version = (
        _text(theme, "name", 150, "theme.name"),
        _text(theme, "version", 40, "theme.version"),
    )
    return Report(
        wordpress=_text(data, "wordpress", 40),
        php=_text(data, "php", 40),
        theme=f"{name} {version}".strip(),
        plugin_version=_text(data, "plugin_version", 40),
        home=_text(data, "home", 500) if "home" in data else "",
        plugins=[_plugin(p) for p in _items(data, "plugins", MAX_PLUGINS, "plugins")],
        core=read_core(_field(data, "core", dict)),
    )


def _plugin(item: Any) -> dict[str, str]:
    """Return one active plugin: its file, name and version."""
    entry = _typed(item, dict, "plugins[]")
    return {key: _text(entry, key, 200, f"plugins[].{key}") for key in ("file", "name", "version")}


def read_core(core: dict[str, Any]) -> dict[str, Any]:
    """Return the core-file check, its status derived from the files it lists."""
    status = _text(core, "status", 12, "core.status")
    if status not in ("ok", "changed", "unavailable"):
        raise HeartbeatError(400, "bad_report", "core.status must be ok, changed or unavailable.")
    missing = [
        one_line(_typed(path, str, "core.missing[]"))[:300]
        for path in _items(core, "missing", MAX_FILES, "core.missing")
    ]
    check = {
        "checked": _field(core, "checked", int, "core.checked") if "checked" in core else 0,
        "modified": _files(core, "modified"),
        "added": _files(core, "added"),
        "missing": missing,
    }
    if status != "unavailable":
        # The files decide, whatever the status the plugin claimed.
        status = "changed" if check["modified"] or check["added"] else "ok"
    return {"status": status, **check}


def _files(core: dict[str, Any], key: str) -> list[dict[str, str]]:
    """Return a list of {"path", "md5"} entries of the core check."""
    files = []
    for item in _items(core, key, MAX_FILES, f"core.{key}"):
        entry = _typed(item, dict, f"core.{key}[]")
        md5 = _text(entry, "md5", 32, f"core.{key}[].md5").lower()
        if not MD5.fullmatch(md5):
            raise HeartbeatError(
                400, "bad_report", f"core.{key}[].md5 must be 32 hexadecimal digits."
            )
        files.append({"path": _text(entry, "path", 300, f"core.{key}[].path"), "md5": md5})
    return files


def keep(site: Site, report: Report, stamp: int, now: datetime) -> None:
    """Make this report the site's latest heartbeat."""
    values = {
        "received_at": now,
        "signed_at": datetime.fromtimestamp(stamp, now.tzinfo),
        "wordpress": report.wordpress,
        "php": report.php,
        "theme": report.theme,
        "plugin_version": report.plugin_version,
        "plugins": report.plugins,
        "core_status": report.core["status"],
        "core": {**report.core, "home": report.home},
    }
    row = db.session.get(SiteHeartbeat, site.id)
    if row is None:
        try:
            # A savepoint: a first heartbeat arriving twice at once updates instead.
            with db.session.begin_nested():
                db.session.add(SiteHeartbeat(site_id=site.id, **values))
            return
        except IntegrityError:
            row = db.session.get(SiteHeartbeat, site.id)
    for name, value in values.items():
        setattr(row, name, value)


def changed_files(core: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Return the core check's changed files as (how, file): modified first, then added."""
    return [("modified", f) for f in core["modified"]] + [("added", f) for f in core["added"]]


def alert_core_change(site: Site, report: Report) -> Ticket:
    """Open a standard ticket about changed core files, once for each distinct change.

    The same files with the same hashes are the same change: the form nonce made from them
    lets the filing workflow find the ticket already opened instead of opening another.
    """
    changed = changed_files(report.core)
    lines = sorted(f"{how} {f['path']} {f['md5']}" for how, f in changed)
    fingerprint = hashlib.sha256("\n".join([f"site {site.id}", *lines]).encode()).hexdigest()
    count = len(changed)
    request = filing.Request(
        subject=f"Possibly hacked: {count} modified WordPress core file{'s' if count > 1 else ''}",
        description=core_change_text(site, report, changed),
        # The client's first contact (every client has one) hears from staff about it.
        name=site.client.name[:120],
        email=site.client.emails[0],
        page_meta={"source": "WordPress heartbeat", "wordpress": report.wordpress},
        nonce=f"{signals.CORE_CHANGE}{fingerprint[:52]}",
    )
    return filing.open_standard_request(site, request)


def core_change_text(site: Site, report: Report, changed: list[tuple[str, dict[str, str]]]) -> str:
    """Return the ticket's description: which core files changed, and what to do."""
    listed = [f"  {how}: {f['path']}" for how, f in changed[:FILES_IN_TICKET]]
    if len(changed) > FILES_IN_TICKET:
        listed.append(f"  … and {len(changed) - FILES_IN_TICKET} more (see the site page)")
    return "\n".join(
        [
            f"The WordPress plugin on {site.name} ({report.home or site.url}) found files under "
            f"wp-admin/ and wp-includes/ that differ from WordPress {report.wordpress} as "
            "published by WordPress.org (modified), or that WordPress does not ship (added):",
            "",
            *listed,
            "",
            f"{report.core['checked']} core files checked. If nobody changed these files on "
            "purpose, treat the site as hacked: take a backup, compare the files, reinstall "
            "WordPress core and change the passwords.",
        ]
    )
