"""What a newcomer meets: `serve --port` moves the links, `demo` can be run again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from supportwidget import config
from supportwidget.demo.seed import DEMO_SITE
from supportwidget.models import Client, Site, db
from supportwidget.notify.messages import public_url
from supportwidget.serve import follow_port

from conftest import form_token, make_app, running, standard_fields


@pytest.fixture
def app_config():
    return {"PUBLIC_URL": config.PUBLIC_URL}  # as a newcomer leaves it


def test_serve_port_moves_the_links_when_public_url_is_unset(app):
    follow_port(app, "127.0.0.1", 8123)
    assert app.config["PUBLIC_URL"] == "http://127.0.0.1:8123"
    with app.test_request_context():
        assert public_url("/t/x") == "http://127.0.0.1:8123/t/x"
    follow_port(app, "0.0.0.0", 8124)  # noqa: S104 - what a newcomer may type
    assert app.config["PUBLIC_URL"] == "http://127.0.0.1:8123"  # now set: kept


def test_serve_keeps_a_public_url_set_on_purpose(database_url, tmp_path):
    with running(make_app(database_url, tmp_path, PUBLIC_URL="https://help.agency.example")) as app:
        follow_port(app, "0.0.0.0", 8080)  # noqa: S104
        assert app.config["PUBLIC_URL"] == "https://help.agency.example"


def test_demo_runs_again_on_another_port_and_prints_both_forms(app, runner, client):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["demo", "--port", "8123"])
    assert again.exit_code == 0, again.output
    acme = db.session.scalar(sa.select(Site).where(Site.name == DEMO_SITE))
    bistro = db.session.scalar(sa.select(Site).join(Client).where(Client.name == "Bistro Uno"))
    assert acme.url == "http://localhost:8123"
    assert "http://localhost:8123" in acme.allowed_origins
    assert "http://localhost:8123" in bistro.allowed_origins
    out = again.output
    assert "serve --port 8123" in out
    assert f"http://127.0.0.1:8123/s/{acme.site_key}" in out
    assert "Bistro Uno (no SLA" in out and f"http://127.0.0.1:8123/s/{bistro.site_key}" in out
    assert db.session.scalar(sa.select(sa.func.count(Site.id))) == 2  # nothing seeded twice
    # The demo's own contact addresses pass the form (no .test: it is refused).
    contact = acme.client.emails[0]
    assert contact.endswith("@example.com")
    path = f"/s/{acme.site_key}"
    fields = standard_fields(email=contact, form_token=form_token(client, path))
    response = client.post(path, data=fields)
    assert response.status_code == 200 and "SUP-" in response.get_data(as_text=True)
