"""Rate limits: they fail open when their store is down, and no stranger locks a client out."""

from __future__ import annotations

import json
import os
import time

import pytest
import sqlalchemy as sa

from supportwidget.intake import identity
from supportwidget.models import Staff, Ticket, db
from supportwidget.platform import limits

from conftest import form_token, standard_fields
from test_dashboard import login

REDIS_URL = os.environ.get("TEST_REDIS_URL")
# Nothing listens on port 1: a Redis that is down (connections refused at once).
REDIS_DOWN = "redis://127.0.0.1:1"
STRANGER, OWNER = "198.51.100.7", "203.0.113.9"
DESCRIPTION = "The shop shows <error 500> since 02:10, nobody can pay."


@pytest.fixture
def storage():
    return "memory"


@pytest.fixture
def app_config(storage):
    """Rate limits on, as in production, counted in memory, in Redis, or in a Redis that is down."""
    if storage == "redis":
        if not REDIS_URL:
            pytest.skip("Redis run skipped: set TEST_REDIS_URL (CI does) to run it")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    return dict(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI={"memory": "memory://", "redis": REDIS_URL, "down": REDIS_DOWN}[
            storage
        ],
        AGENCY_PHONE="+44 20 7946 0000",
        AGENCY_EMAIL="help@agency.test",
    )


@pytest.fixture
def paging_app_config(app_config, vonage_standin):
    """As app_config, paging through the Vonage stand-in."""
    from vonage_standin import API_KEY, API_SECRET

    return dict(
        app_config,
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
        SMS_TIMEOUT=1,
    )


@pytest.fixture(autouse=True)
def fresh_limiter():
    yield
    # The extension object outlives each test's app and remembers a dead store; a new
    # process (the only way a real service gets a new app) starts without that memory.
    limits.limiter._storage_dead = False


def emergency(client, site, address, user=None):
    """File an emergency from an address, optionally as the site's signed-in user."""
    path = f"/s/{site.site_key}/emergency"
    fields = standard_fields(
        category="offline", offline_answer="yes", billing_consent="y", description=DESCRIPTION
    )
    if user:
        fields["page_meta"] = json.dumps({"url": "https://acme.test/wp-admin/", "user": user})
    fields["form_token"] = form_token(client, path)
    return client.post(path, data=fields, environ_base={"REMOTE_ADDR": address})


def signed_user(site):
    signature = identity.sign(
        site.secret, site.site_key, "jane@example.com", "Jane Owner", int(time.time())
    )
    return {"name": "Jane Owner", "email": "jane@example.com", "signature": signature}


def ticket_count():
    return db.session.scalar(sa.select(sa.func.count(Ticket.id)))


@pytest.mark.parametrize("storage", ["down"])
def test_with_the_counter_store_down_forms_and_sign_in_work_and_staff_are_told_once(
    client, site, smtp_server, caplog
):
    alice = db.session.scalar(sa.select(Staff).where(Staff.name == "Alice"))
    alice.set_password("correct horse")
    db.session.commit()
    path = f"/s/{site.site_key}"
    standard = {**standard_fields(), "form_token": form_token(client, path)}
    assert "SUP-" in client.post(path, data=standard).get_data(as_text=True)
    assert "SUP-" in emergency(client, site, STRANGER).get_data(as_text=True)
    assert login(client, "alice@agency.test", "correct horse").status_code == 303
    assert ticket_count() == 2
    assert any("rate limits are failing open" in r.getMessage() for r in caplog.records)
    told = [m for m in smtp_server.messages if "Rate limits are not working" in m["Subject"]]
    assert sorted(m["To"] for m in told) == [
        "alice@agency.test",
        "bob@agency.test",
        "inbox@agency.test",
    ]


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_a_flood_from_one_address_does_not_lock_out_the_clients_other_addresses(
    client, site, smtp_server
):
    assert [emergency(client, site, STRANGER).status_code for _ in range(3)] == [200] * 3
    assert emergency(client, site, STRANGER).status_code == 429
    assert emergency(client, site, OWNER).status_code == 200
    assert ticket_count() == 4
    # Staff still hear about the flood, once.
    floods = [m for m in smtp_server.messages if "rate limit reached" in m["Subject"]]
    assert len(floods) == 3 and STRANGER in floods[0].get_body(("plain",)).get_content()


def test_the_sites_signed_in_user_is_never_locked_out(client, site):
    for _ in range(3):
        emergency(client, site, STRANGER)
    assert emergency(client, site, STRANGER).status_code == 429
    user = signed_user(site)
    assert [emergency(client, site, STRANGER, user).status_code for _ in range(4)] == [200] * 4
    forged = {**user, "signature": user["signature"][:-4] + "0000"}
    assert emergency(client, site, STRANGER, forged).status_code == 429


def test_the_429_page_keeps_what_was_typed_and_gives_the_agencys_contact(client, site):
    for _ in range(3):
        emergency(client, site, STRANGER)
    refused = emergency(client, site, STRANGER)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert "The shop shows &lt;error 500&gt; since 02:10, nobody can pay." in text
    assert 'name="form_token"' in text and "<textarea" in text
    assert "+44 20 7946 0000" in text and "help@agency.test" in text
    assert "Too many requests came from here" in text


@pytest.mark.parametrize("storage", ["down"])
def test_with_the_counter_store_down_the_on_call_team_is_still_paged(
    database_url, tmp_path, smtp_server, paging_app_config, vonage_standin
):
    from conftest import make_app, running, seed_site

    config = {**smtp_server.config(), **paging_app_config}
    with running(make_app(database_url, tmp_path, **config)) as app:
        site = seed_site()
        assert emergency(app.test_client(), site, OWNER).status_code == 200
        assert {r["to"] for r in vonage_standin.requests} == {"447700900001", "447700900002"}
