"""Signed identity from the WordPress plugin: one vector file for PHP and Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from supportwidget.intake import identity
from supportwidget.models import Site, Ticket, db

from conftest import form_token, standard_fields

PLUGIN = Path(__file__).parent.parent / "examples" / "wordpress" / "supportwidget"
VECTORS = json.loads((PLUGIN / "tests" / "vectors.json").read_text())["vectors"]
needs_php = pytest.mark.skipif(
    shutil.which("php") is None, reason="PHP not installed (CI installs Debian's php-cli)"
)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["site_key"])
def test_python_signs_exactly_like_the_vectors(vector):
    args = (vector["secret"], vector["site_key"], vector["email"], vector["name"])
    assert identity.sign(*args, vector["timestamp"]) == vector["signature"]
    site = Site(site_key=vector["site_key"], secret=vector["secret"])
    now = vector["timestamp"] + 60
    assert identity.verify(site, vector["email"], vector["name"], vector["signature"], now=now)


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ({}, True),
        ({"name": "Mallory"}, False),
        ({"email": "mallory@example.com"}, False),
        ({"age": 24 * 3600 + 1}, False),
        ({"age": -3600}, False),
        ({"signature": "1764115200.abc"}, False),
        ({"signature": ""}, False),
    ],
)
def test_verify_refuses_tampered_stale_or_malformed(change, ok):
    v = VECTORS[0]
    site = Site(site_key=v["site_key"], secret=v["secret"])
    now = v["timestamp"] + change.get("age", 10)
    signature = change.get("signature", v["signature"])
    email, name = change.get("email", v["email"]), change.get("name", v["name"])
    assert identity.verify(site, email, name, signature, now=now) is ok


@needs_php
def test_every_plugin_file_passes_php_lint():
    files = sorted(PLUGIN.rglob("*.php"))
    assert len(files) >= 5
    for path in files:
        result = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_php
def test_php_signs_exactly_like_the_vectors():
    result = subprocess.run(
        ["php", str(PLUGIN / "tests" / "signature-test.php")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(VECTORS)} passed, 0 failed" in result.stdout


def render_plugin(settings, user, iframe=False):
    env = {**os.environ, "SW_SETTINGS": json.dumps(settings), "SW_USER": json.dumps(user)}
    if iframe:
        env["SW_IFRAME"] = "1"
    result = subprocess.run(
        ["php", str(PLUGIN / "tests" / "render.php")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@needs_php
def test_plugin_embeds_deferred_widget_with_a_signature_the_service_accepts(app, site):
    settings = {
        "service_url": "https://support.example/",
        "site_key": site.site_key,
        "site_secret": site.secret,
        "phone": "+44 20 7946 0000",
        "email": "help@agency.test",
        "roles": ["administrator"],
    }
    user = {"roles": ["administrator"], "name": "Jane <Owner>", "email": "jane@example.com"}
    out = render_plugin(settings, user)
    assert len(out["scripts"]) == 1  # enqueued twice, loaded once
    tag = out["scripts"][0]
    assert 'src="https://support.example/widget.js"' in tag and " defer" in tag
    assert f'data-site-key="{site.site_key}"' in tag
    assert 'data-user-name="Jane &lt;Owner&gt;"' in tag  # escaped
    assert "WordPress 6.7.1" in tag.replace("&quot;", '"')
    signature = tag.split('data-user-signature="')[1].split('"')[0]
    assert identity.verify(site, "jane@example.com", "Jane <Owner>", signature)
    assert 'data-phone="+44 20 7946 0000"' in tag and 'data-email="help@agency.test"' in tag
    assert out["admin_bar"][0]["title"] == "Create a ticket?"


@needs_php
@pytest.mark.parametrize(("roles", "iframe"), [(["subscriber"], False), (["administrator"], True)])
def test_plugin_stays_out_for_other_roles_and_inside_iframes(site, roles, iframe):
    settings = {
        "service_url": "https://support.example",
        "site_key": site.site_key,
        "site_secret": "x",
        "roles": ["administrator"],
    }
    user = {"roles": roles, "name": "Sam", "email": "sam@example.com"}
    out = render_plugin(settings, user, iframe=iframe)
    assert out["scripts"] == [] and out["admin_bar"] == []


def submit_with_user(client, site, user):
    path = f"/s/{site.site_key}"
    data = standard_fields(
        page_meta=json.dumps({"url": "https://acme.test/wp-admin/", "user": user})
    )
    data["form_token"] = form_token(client, path)
    return client.post(path, data=data)


def test_verified_identity_is_recorded_on_the_ticket(client, site):
    signature = identity.sign(
        site.secret, site.site_key, "jane@example.com", "Jane Owner", int(time.time())
    )
    user = {"name": "Jane Owner", "email": "jane@example.com", "signature": signature}
    assert client.post(f"/s/{site.site_key}/identity", json=user).json == {"verified": True}
    assert submit_with_user(client, site, user).status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.identity_verified is True
    assert "signature" not in ticket.page_meta["user"]


def test_forged_identity_is_recorded_as_unverified(client, site):
    user = {
        "name": "Jane Owner",
        "email": "jane@example.com",
        "signature": f"{int(time.time())}.{'0' * 64}",
    }
    assert client.post(f"/s/{site.site_key}/identity", json=user).json == {"verified": False}
    submit_with_user(client, site, user)
    assert db.session.scalar(sa.select(Ticket)).identity_verified is False
