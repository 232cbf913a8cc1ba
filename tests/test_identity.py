"""Signed identity from the WordPress plugin: one vector file for PHP and Python."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from supportwidget.intake import identity
from supportwidget.models import Site, Ticket, db

from conftest import form_token, standard_fields

WORDPRESS = Path(__file__).parent.parent / "examples" / "wordpress"
PHP_TESTS = WORDPRESS / "tests"
VECTORS = json.loads((PHP_TESTS / "vectors.json").read_text())["vectors"]
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
def test_php_signs_exactly_like_the_vectors():
    result = subprocess.run(
        ["php", str(PHP_TESTS / "signature-test.php")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    with_names = sum("display_name" in v for v in VECTORS)
    assert f"{len(VECTORS) + with_names + 1} passed, 0 failed" in result.stdout


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
    answer = client.post(f"/s/{site.site_key}/identity", json=user).json
    assert answer == {"verified": True, "requests": []}
    assert submit_with_user(client, site, user).status_code == 200
    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.identity_verified is True
    assert "signature" not in ticket.page_meta["user"]
    # "My requests": the signed-in person now sees it, with its state and conversation link.
    (mine,) = client.post(f"/s/{site.site_key}/identity?locale=es", json=user).json["requests"]
    assert mine["reference"] == ticket.reference and mine["status"] == "Nueva"
    assert client.get(mine["url"]).status_code == 200


def test_forged_identity_is_recorded_as_unverified(client, site):
    user = {
        "name": "Jane Owner",
        "email": "jane@example.com",
        "signature": f"{int(time.time())}.{'0' * 64}",
    }
    assert client.post(f"/s/{site.site_key}/identity", json=user).json == {"verified": False}
    submit_with_user(client, site, user)
    assert db.session.scalar(sa.select(Ticket)).identity_verified is False
