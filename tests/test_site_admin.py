"""Sites run from the admin page: the Enabled switch, label and colour on the button, the
site secret shown and rotated only after the admin's password."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from supportwidget.models import Site, Staff, db

from test_dashboard import PASSWORD, csrf_from, login, staff  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from browser_fixtures import LiveService

pytest_plugins = ["browser_fixtures"]


def site_form(site, **changes):
    values = {
        "name": site.name,
        "url": site.url,
        "origins": " ".join(site.allowed_origins),
        "label": site.label or "",
        "color": site.color or "",
        "enabled": "y",
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


@pytest.mark.usefixtures("staff")
def test_unticking_enabled_switches_the_site_off_and_ticking_on(client, site):
    login(client, "alice@agency.test")
    page = client.get("/dashboard/admin/sites").get_data(as_text=True)
    off = site_form(site, enabled=None)  # an unticked checkbox is not sent
    response = client.post(
        f"/dashboard/admin/sites/{site.id}", data={"csrf_token": csrf_from(page), **off}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert site.enabled is False
    assert client.get(f"/s/{site.site_key}").status_code == 403
    page = client.get("/dashboard/admin/sites").get_data(as_text=True)
    client.post(
        f"/dashboard/admin/sites/{site.id}",
        data={"csrf_token": csrf_from(page), **site_form(site)},
    )
    db.session.expire_all()
    assert site.enabled is True and client.get(f"/s/{site.site_key}").status_code == 200


def test_widget_json_carries_the_sites_label_and_colour(app, client, site):
    site.label, site.color = "Need help?", "#ffcc00"
    db.session.commit()
    app.config.update(AGENCY_PHONE="+44 20 7946 0000", AGENCY_EMAIL="help@agency.example")
    origin = site.allowed_origins[0]
    response = client.get(f"/s/{site.site_key}/widget.json", headers={"Origin": origin})
    assert response.status_code == 200
    assert response.get_json() == {
        "ok": True,
        "label": "Need help?",
        "color": "#ffcc00",
        "phone": "+44 20 7946 0000",
        "email": "help@agency.example",
    }
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert client.get("/s/unknown-key/widget.json").status_code == 404


def test_site_secret_command_prints_and_rotates(runner, site):
    result = runner.invoke(args=["site", "secret", "acme.test"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == site.secret
    old = site.secret
    result = runner.invoke(args=["site", "secret", site.site_key, "--rotate"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert site.secret != old and result.output.strip().splitlines()[-1] == site.secret
    missing = runner.invoke(args=["site", "secret", "nowhere.test"])
    assert missing.exit_code != 0 and "No site named" in missing.output


@pytest.mark.usefixtures("staff")
def test_admin_sees_and_rotates_the_secret_only_with_their_password(client, site):
    login(client, "alice@agency.test")
    page = client.get("/dashboard/admin/sites").get_data(as_text=True)
    assert site.secret not in page
    wrong = client.post(
        f"/dashboard/admin/sites/{site.id}/secret",
        data={"csrf_token": csrf_from(page), "password": "guess"},
    )
    assert wrong.status_code == 403 and site.secret not in wrong.get_data(as_text=True)
    shown = client.post(
        f"/dashboard/admin/sites/{site.id}/secret",
        data={"csrf_token": csrf_from(page), "password": PASSWORD},
    )
    assert shown.status_code == 200 and site.secret in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    old = site.secret
    rotated = client.post(
        f"/dashboard/admin/sites/{site.id}/secret",
        data={"csrf_token": csrf_from(page), "password": PASSWORD, "rotate": "y"},
    )
    db.session.expire_all()
    assert site.secret != old and site.secret in rotated.get_data(as_text=True)
    assert "New site secret" in rotated.get_data(as_text=True)


@pytest.mark.browser
def test_a_label_set_in_the_admin_page_shows_on_the_button(live_server: LiveService, page: Page):
    def prepare() -> None:
        for member in db.session.scalars(sa.select(Staff)):
            member.set_password(PASSWORD)
        db.session.commit()

    live_server.query(prepare)
    page.goto(f"{live_server.url}/dashboard/login")
    page.get_by_label("E-mail").fill("alice@agency.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/dashboard/admin/sites")
    row = page.locator("section.site").first
    row.get_by_label("Button label").fill("Ask Acme support")
    row.get_by_label("Colour").fill("#ffcc00")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    assert live_server.query(lambda: db.session.scalar(sa.select(Site.label))) == "Ask Acme support"

    url = live_server.host.add("/plain", live_server.embed())
    page.goto(url)
    launcher = page.get_by_role("button", name="Ask Acme support")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_css("background-color", "rgb(255, 204, 0)")
    expect(launcher).to_have_css("color", "rgb(0, 0, 0)")  # contrast on yellow
    # The snippet's own attribute still wins.
    url = live_server.host.add("/own", live_server.embed(label="Help!"))
    page.goto(url)
    expect(page.get_by_role("button", name="Help!")).to_be_visible()
    expect(page.get_by_role("button", name="Ask Acme support")).to_have_count(0)
