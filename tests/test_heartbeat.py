"""WordPress heartbeats: signed by the site secret, kept per site, shown to staff; a changed
core file opens a ticket once per distinct change."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from supportwidget.models import HandledMessage, Site, SiteHeartbeat, Staff, Ticket, db, utcnow
from supportwidget.sites import heartbeats
from supportwidget.tickets import filing as tickets

from test_dashboard import PASSWORD, login

VECTORS = Path(__file__).parent.parent / "examples" / "wordpress" / "tests" / "vectors.json"
MD5_A, MD5_B = "0" * 31 + "a", "0" * 31 + "b"


@pytest.fixture
def staff(site):
    """Give the seeded admin (Alice) and agent (Bob) passwords."""
    for member in db.session.scalars(sa.select(Staff)):
        member.set_password(PASSWORD)
    db.session.commit()


def report(**changes):
    """Return a heartbeat body as the plugin sends it: versions, plugins, core check."""
    body = {
        "wordpress": "6.1.9",
        "php": "8.2.36",
        "theme": {"name": "Twenty Twenty-Three", "version": "1.0"},
        "plugin_version": "0.2.0",
        "home": "https://acme.test",
        "plugins": [
            {"file": "akismet/akismet.php", "name": "Akismet Anti-Spam", "version": "5.0.1"},
            {"file": "supportwidget/supportwidget.php", "name": "Supportwidget", "version": "0.2"},
        ],
        "core": {"status": "ok", "checked": 1920, "modified": [], "added": [], "missing": []},
    }
    return {**body, **changes}


def beat(client, site, body=None, *, stamp=None, secret=None, raw=None):
    """POST a heartbeat signed like the plugin signs it."""
    data = raw if raw is not None else json.dumps({"site_key": site.site_key, **(body or report())})
    data = data.encode() if isinstance(data, str) else data
    signature = heartbeats.sign(secret or site.secret, stamp or int(time.time()), data)
    return client.post(
        "/api/v1/heartbeat",
        data=data,
        headers={heartbeats.SIGNATURE_HEADER: signature},
        content_type="application/json",
    )


def changed(*files, how="modified"):
    """Return a core check listing changed files as (path, md5)."""
    listed = [{"path": path, "md5": md5} for path, md5 in files]
    return {"status": "changed", "checked": 1920, "modified": [], "added": [], how: listed}


def stored(site):
    db.session.expire_all()
    return db.session.get(SiteHeartbeat, site.id)


def test_signature_matches_the_shared_vector():
    vector = json.loads(VECTORS.read_text())["heartbeat"]
    body = vector["body"].encode()
    assert heartbeats.sign(vector["secret"], vector["timestamp"], body) == vector["signature"]


def test_signed_heartbeat_is_kept_and_shown_on_the_site_and_ticket_pages(client, site, staff):
    response = beat(client, site)
    assert response.status_code == 200, response.json
    assert response.json["core"] == "ok" and response.json["ticket"] is None
    row = stored(site)
    assert (row.wordpress, row.php, row.theme) == ("6.1.9", "8.2.36", "Twenty Twenty-Three 1.0")
    assert [p["name"] for p in row.plugins] == ["Akismet Anti-Spam", "Supportwidget"]

    ticket = tickets.open_standard_request(
        site, tickets.Request("Header broken", "The header is broken.", "Jane", "jane@example.com")
    )
    assert login(client, "bob@agency.test").status_code == 303  # an agent, not an admin
    page = client.get(f"/dashboard/sites/{site.id}").get_data(as_text=True)
    for text in ("WordPress 6.1.9", "PHP 8.2.36", "Twenty Twenty-Three 1.0", "Akismet Anti-Spam"):
        assert text in page
    assert "core files match WordPress 6.1.9" in page and ticket.reference in page
    ticket_page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert f'href="/dashboard/sites/{site.id}"' in ticket_page
    assert "WordPress 6.1.9, PHP 8.2.36" in ticket_page


def test_the_admin_sites_list_links_each_site_page(client, site, staff):
    login(client, "alice@agency.test")
    page = client.get("/dashboard/admin/sites").get_data(as_text=True)
    assert f'href="/dashboard/sites/{site.id}"' in page


def test_site_page_is_for_signed_in_staff_only(client, site):
    response = client.get(f"/dashboard/sites/{site.id}")
    assert response.status_code == 302 and "/dashboard/login" in response.location


def test_unknown_site_page_is_a_404(client, site, staff):
    login(client, "bob@agency.test")
    assert client.get("/dashboard/sites/999").status_code == 404


def test_a_test_heartbeat_says_what_it_verified_and_keeps_nothing(client, site):
    response = beat(client, site, {"test": True})
    assert response.status_code == 200
    answer = response.json
    assert answer["test"] is True and answer["site"] == "acme.test"
    assert answer["client"] == "Acme Shop"
    assert answer["verified"]["site_key"] and answer["verified"]["secret"]
    assert abs(answer["verified"]["clock_skew"]) <= 2
    assert stored(site) is None


def signed_by(header):
    """Return a beat() that sends this signature header instead of a good one."""

    def send(client, site):
        body = json.dumps({"site_key": site.site_key, **report()})
        headers = {heartbeats.SIGNATURE_HEADER: header} if header is not None else {}
        return client.post("/api/v1/heartbeat", data=body, headers=headers)

    return send


@pytest.mark.parametrize(
    ("send", "status", "message"),
    [
        (signed_by(None), 401, "Sign the heartbeat"),
        (signed_by("1764115200"), 401, "Sign the heartbeat"),
        (signed_by(f"17641152OO.{'a' * 64}"), 401, "Sign the heartbeat"),
        (signed_by(f"\u00b2.{'a' * 64}"), 401, "Sign the heartbeat"),
        (lambda c, s: beat(c, s, secret="not the secret"), 403, "check the site secret"),
        (lambda c, s: beat(c, s, stamp=int(time.time()) - 301), 403, "301 s old"),
        (lambda c, s: beat(c, s, stamp=int(time.time()) + 400), 403, "ahead of ours"),
        (lambda c, s: beat(c, s, raw=json.dumps({"site_key": "nope", **report()})), 404, "key"),
        (lambda c, s: beat(c, s, raw=b"\xff{not json"), 400, "not valid JSON"),
        (lambda c, s: beat(c, s, raw="[" * 100_000), 400, "not valid JSON"),
        (lambda c, s: beat(c, s, raw="[1, 2]"), 400, "JSON object"),
        (lambda c, s: beat(c, s, raw=json.dumps({**report()})), 400, "site_key must be"),
        (lambda c, s: beat(c, s, report(wordpress=6.1)), 400, "wordpress must be a string"),
        (lambda c, s: beat(c, s, report(theme="x")), 400, "theme must be an object"),
        (lambda c, s: beat(c, s, report(plugins=["x"])), 400, "plugins[] must be an object"),
        (
            lambda c, s: beat(c, s, report(core=changed(("wp-login.php", "x" * 32)))),
            400,
            "32 hexadecimal digits",
        ),
        (
            lambda c, s: beat(c, s, report(core={"status": "fine"})),
            400,
            "core.status must be ok, changed or unavailable",
        ),
        (lambda c, s: beat(c, s, report(core={"status": "ok", "checked": True})), 400, "whole"),
        (
            lambda c, s: beat(
                c, s, report(plugins=[{"file": "a", "name": "b", "version": "1"}] * 1001)
            ),
            400,
            "plugins may list at most 1000 items",
        ),
    ],
)
def test_bad_heartbeats_are_refused_with_the_reason(client, site, send, status, message):
    response = send(client, site)
    assert response.status_code == status
    assert message in response.json["message"]
    assert stored(site) is None


def test_a_disabled_site_is_refused(client, site):
    site.enabled = False
    db.session.commit()
    response = beat(client, site)
    assert response.status_code == 403 and "switched off" in response.json["message"]


def test_a_rotated_key_keeps_working_through_its_grace(client, site):
    old_key = site.site_key
    site.rotate_key(timedelta(days=14))
    db.session.commit()
    body = json.dumps({**report(), "site_key": old_key})
    assert beat(client, site, raw=body).status_code == 200


def test_a_signature_is_good_once(client, site):
    body = json.dumps({"site_key": site.site_key, **report()}).encode()
    headers = {heartbeats.SIGNATURE_HEADER: heartbeats.sign(site.secret, int(time.time()), body)}
    first = client.post("/api/v1/heartbeat", data=body, headers=headers)
    again = client.post("/api/v1/heartbeat", data=body, headers=headers)
    assert first.status_code == 200
    assert again.status_code == 409 and "received already" in again.json["message"]


def test_used_signatures_are_forgotten_once_too_old_to_replay(client, site):
    old = HandledMessage(key=heartbeats.USED + "f" * 64, received_at=utcnow() - timedelta(hours=1))
    recent = HandledMessage(key=heartbeats.USED + "e" * 64, received_at=utcnow())
    db.session.add_all([old, recent])
    db.session.commit()
    assert beat(client, site).status_code == 200
    keys = set(db.session.scalars(sa.select(HandledMessage.key)))
    assert heartbeats.USED + "f" * 64 not in keys and heartbeats.USED + "e" * 64 in keys


def test_a_heartbeat_over_the_size_limit_is_refused_unread(client, site):
    padding = "x" * heartbeats.MAX_BYTES
    response = beat(client, site, report(padding=padding))
    assert response.status_code == 413
    assert str(heartbeats.MAX_BYTES) in response.json["message"]
    assert stored(site) is None


def test_a_chunked_heartbeat_over_the_limit_is_refused(client, site):
    body = json.dumps({"site_key": site.site_key, **report(padding="x" * heartbeats.MAX_BYTES)})
    signature = heartbeats.sign(site.secret, int(time.time()), body.encode())
    # No length to check first: the server de-chunked it (waitress marks the input terminated).
    response = client.post(
        "/api/v1/heartbeat",
        input_stream=io.BytesIO(body.encode()),
        headers={heartbeats.SIGNATURE_HEADER: signature, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert stored(site) is None


def test_changed_core_files_open_one_ticket_per_distinct_change(client, site, smtp_server):
    hacked = report(core=changed(("wp-includes/version.php", MD5_A), ("wp-login.php", MD5_B)))
    first = beat(client, site, hacked)
    assert first.status_code == 200 and first.json["core"] == "changed"
    reference = first.json["ticket"]
    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.reference == reference and ticket.kind == "standard"
    assert ticket.subject == "Possibly hacked: 2 modified WordPress core files"
    assert "modified: wp-includes/version.php" in ticket.description
    assert ticket.requester_email == "owner@acme.test"
    mail = smtp_server.wait_for(3)  # two staff and the inbox, plus the client's confirmation
    assert any("Possibly hacked: 2 modified" in m["Subject"] for m in mail)

    # Same files, same hashes, in another order, signed anew: the same change.
    same = report(core=changed(("wp-login.php", MD5_B), ("wp-includes/version.php", MD5_A)))
    assert beat(client, site, same).json["ticket"] == reference
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 1
    # The plugin cannot talk a changed file into "ok".
    claimed_ok = {**changed(("wp-login.php", MD5_B)), "status": "ok"}
    assert beat(client, site, report(core=claimed_ok)).json["core"] == "changed"
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 2
    added = report(core=changed(("wp-includes/x.php", MD5_A), how="added"))
    ticket = db.session.get(Ticket, int(beat(client, site, added).json["ticket"][4:]))
    assert ticket.subject == "Possibly hacked: 1 modified WordPress core file"
    assert "added: wp-includes/x.php" in ticket.description


def test_missing_files_and_unavailable_checksums_open_no_ticket(client, site):
    missing = {"status": "ok", "checked": 1900, "missing": ["wp-includes/js/jquery/jquery.js"]}
    assert beat(client, site, report(core=missing)).json["core"] == "ok"
    assert beat(client, site, report(core={"status": "unavailable"})).json["core"] == "unavailable"
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    assert stored(site).core_status == "unavailable"


def test_the_site_page_lists_changed_files_and_says_when_a_site_went_quiet(client, site, staff):
    beat(client, site, report(core=changed(("wp-includes/version.php", MD5_A))))
    row = stored(site)
    row.received_at = utcnow() - timedelta(minutes=20)
    db.session.commit()
    login(client, "bob@agency.test")
    page = client.get(f"/dashboard/sites/{site.id}").get_data(as_text=True)
    assert "core files changed: 1 modified, 0 added" in page
    assert "<code>wp-includes/version.php</code>" in page
    assert "nothing since" in page


def test_site_page_escapes_what_the_plugin_reports(client, site, staff):
    evil = "<script>alert(1)</script>"
    plugins = [{"file": "x/x.php", "name": evil, "version": evil}]
    beat(client, site, report(plugins=plugins, theme={"name": evil, "version": "1"}))
    login(client, "bob@agency.test")
    page = client.get(f"/dashboard/sites/{site.id}").get_data(as_text=True)
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_site_without_heartbeats_says_so(client, site, staff):
    login(client, "bob@agency.test")
    page = client.get(f"/dashboard/sites/{site.id}").get_data(as_text=True)
    assert "No heartbeat yet" in page


def test_a_second_site_keeps_its_own_heartbeat(client, site):
    other = Site(client=site.client, name="shop.acme.test", url="https://shop.acme.test")
    db.session.add(other)
    db.session.commit()
    beat(client, site)
    beat(client, other, report(wordpress="6.4.1"))
    assert stored(site).wordpress == "6.1.9" and stored(other).wordpress == "6.4.1"
