"""The WordPress plugin in a real WordPress (Debian's 6.1 package), driven in Chromium.

One WordPress is installed per session (see wordpress_fixtures.py); each test starts the
support service it needs: a live one, one that is down (nothing listens), or one that
accepts connections and never answers.
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from supportwidget.models import SiteHeartbeat, Ticket, db

from wordpress_fixtures import (
    PLUGIN_FILE,
    WordPress,
    WordPressService,
    sign_in,
)

pytest_plugins = ["browser_fixtures", "wordpress_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAME = "iframe[title='Support request form']"
PHONE, EMAIL = "+44 20 7946 0000", "help@agency.test"


@pytest.fixture(autouse=True)
def plugin_says_nothing_in_the_debug_log(wordpress: WordPress) -> Iterator[None]:
    """PHP 8.2 with WP_DEBUG: the plugin adds no notice, warning or error to debug.log."""
    before = wordpress.log.read_text() if wordpress.log.exists() else ""
    yield
    after = wordpress.log.read_text() if wordpress.log.exists() else ""
    added = after[len(before) :]
    assert "supportwidget" not in added.lower(), added


@pytest.fixture
def active(wordpress: WordPress) -> WordPress:
    """The plugin installed and active."""
    wordpress.activate()
    return wordpress


def configure(wordpress: WordPress, url: str, key: str, secret: str = "", **more: Any) -> None:
    """Point the plugin at a service, with the agency's direct contacts."""
    wordpress.configure(
        service_url=url, site_key=key, site_secret=secret, phone=PHONE, email=EMAIL, **more
    )


def admin_page(page: Page, wordpress: WordPress, path: str = "/wp-admin/") -> float:
    """Open a wp-admin page without waiting for its load event; return DOMContentLoaded in ms."""
    page.goto(wordpress.url + path, wait_until="domcontentloaded", timeout=15_000)
    return page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")


def newest_ticket(service: WordPressService) -> Ticket:
    def load() -> Ticket:
        ticket = db.session.scalars(sa.select(Ticket).order_by(Ticket.id.desc())).first()
        assert ticket is not None, "no ticket stored"
        db.session.expunge(ticket)
        return ticket

    return service.query(load)


def test_the_zip_holds_the_plugin_folder_and_no_tests(wordpress: WordPress) -> None:
    names = zipfile.ZipFile(wordpress.plugin_zip).namelist()
    assert all(name.startswith("supportwidget/") for name in names)
    assert not [name for name in names if "test" in name.lower()]
    for needed in ("supportwidget.php", "uninstall.php", "readme.txt", "assets/admin.js"):
        assert f"supportwidget/{needed}" in names
    assert "supportwidget/languages/supportwidget-fr_FR.mo" in names


def test_a_fresh_wordpress_activates_configures_and_files_a_verified_ticket(
    wordpress: WordPress, service: WordPressService, chromium: Browser
) -> None:
    wordpress.deactivate()
    wordpress.configure()  # a fresh install: nothing saved
    with sign_in(chromium, wordpress, "admin") as page:
        page.goto(f"{wordpress.url}/wp-admin/plugins.php")
        row = page.locator(f"tr[data-plugin='{PLUGIN_FILE}']")
        row.get_by_role("link", name=re.compile("^Activate")).click()
        row.get_by_role("link", name="Settings").click()
        expect(page.get_by_role("heading", name="Support widget")).to_be_visible()
        page.fill("#sw-url", service.url + "/")
        page.fill("#sw-key", service.site_key)
        page.fill("#sw-secret", service.secret)
        page.get_by_role("button", name="Save Changes").click()
        saved = page.locator("#setting-error-supportwidget-verified")
        expect(saved).to_contain_text("Settings saved.")
        expect(saved).to_contain_text("Site key and site secret verified")
        assert service.secret not in page.content()

        page.get_by_role("button", name="Test connection").click()
        result = page.locator("#supportwidget-test-result")
        expect(result).to_have_class(re.compile("notice-success"))
        expect(result).to_contain_text("knows this site as “acme.test” (Acme Shop)")

    # Tom's name is stored as "Tom &amp; Jerry O&#039;Neil": what is signed is what is sent.
    with sign_in(chromium, wordpress, "tom") as page:
        admin_page(page, wordpress)
        expect(page.get_by_role("button", name="Create a ticket?")).to_be_visible()
        page.locator("#wp-admin-bar-supportwidget > a").click()
        expect(page.get_by_role("dialog", name="Contact support")).to_be_visible()
        form = page.frame_locator(FRAME)
        expect(form.locator("#identity-verified")).to_have_text(
            "Signed in as Tom & Jerry O'Neil (verified)"
        )
        expect(form.get_by_label("Your name")).to_have_value("Tom & Jerry O'Neil")
        expect(form.get_by_label("Your name")).not_to_be_editable()
        expect(form.get_by_label("Your e-mail")).not_to_be_editable()
        form.get_by_label("Subject").fill("The shop page shows an error")
        form.get_by_label("Description").fill("Since the update the shop page shows an error.")
        form.get_by_role("button", name="Send request").click()
        expect(form.locator("#sw-result")).to_contain_text("SUP-")
    ticket = newest_ticket(service)
    assert ticket.identity_verified is True
    assert (ticket.requester_name, ticket.requester_email) == (
        "Tom & Jerry O'Neil",
        "tom@example.com",
    )
    assert ticket.page_meta["context"]["cms"] == "WordPress 6.1.9"


def test_wp_admin_stays_usable_while_the_service_hangs(
    active: WordPress, hanging_url: str, chromium: Browser
) -> None:
    configure(active, hanging_url, "k3yAbC_-123456", "s" * 64)
    with sign_in(chromium, active, "admin") as page:
        ready = admin_page(page, active)
        assert ready < 5000, f"DOMContentLoaded after {ready:.0f} ms"
        tag = page.locator("#supportwidget-js")
        assert tag.get_attribute("async") is not None and tag.get_attribute("defer") is None
        # wp-admin's own scripts run: Screen Options, a dashboard box, the admin menu.
        page.click("#show-settings-link")
        expect(page.locator("#screen-options-wrap")).to_be_visible()
        page.locator("#dashboard_right_now .handlediv").click()
        expect(page.locator("#dashboard_right_now")).to_have_class(re.compile(r"\bclosed\b"))
        page.click("#collapse-button")
        expect(page.locator("body")).to_have_class(re.compile(r"\bfolded\b"))
        # The widget never answers: the fallback takes its place.
        fallback = page.locator("#supportwidget-fallback")
        expect(fallback).to_be_visible(timeout=10_000)
        expect(fallback.get_by_role("link", name=f"Call {PHONE}")).to_have_attribute(
            "href", "tel:+442079460000"
        )


def test_fallback_when_the_service_is_down_for_an_editor(
    active: WordPress, down_url: str, chromium: Browser
) -> None:
    configure(active, down_url, "k3yAbC_-123456", "s" * 64)
    with sign_in(chromium, active, "editor") as page:
        started = time.monotonic()
        admin_page(page, active)
        fallback = page.locator("#supportwidget-fallback")
        expect(fallback).to_be_visible()
        assert time.monotonic() - started < 5, "the refused widget.js shows the fallback at once"
        page.click("#show-settings-link")
        expect(page.locator("#screen-options-wrap")).to_be_visible()
        emergency = fallback.get_by_role("link", name="Emergency: site down or hacked")
        expect(emergency).to_have_attribute(
            "href", f"{down_url}/s/k3yAbC_-123456/emergency?locale=en_US"
        )
        expect(
            fallback.get_by_role("link", name="Open the support form in a new tab")
        ).to_have_attribute("href", f"{down_url}/s/k3yAbC_-123456?locale=en_US")
        expect(fallback.get_by_role("link", name=f"E-mail {EMAIL}")).to_have_attribute(
            "href", f"mailto:{EMAIL}"
        )
        # The admin-bar item is a real link to the hosted form, with the same contacts below it.
        item = page.locator("#wp-admin-bar-supportwidget > a")
        expect(item).to_have_attribute("href", f"{down_url}/s/k3yAbC_-123456?locale=en_US")
        expect(item).to_have_attribute("target", "_blank")
        submenu = page.locator("#wp-admin-bar-supportwidget-emergency a")
        expect(submenu).to_have_attribute(
            "href", f"{down_url}/s/k3yAbC_-123456/emergency?locale=en_US"
        )
        # Editors cannot open the settings page; the emergency link reaches them anyway.
        response = page.goto(f"{active.url}/wp-admin/options-general.php?page=supportwidget")
        assert response is not None and response.status == 403


def test_a_role_left_out_sees_nothing(active: WordPress, down_url: str, chromium: Browser) -> None:
    configure(active, down_url, "k3yAbC_-123456", roles=["administrator"])
    with sign_in(chromium, active, "editor") as page:
        admin_page(page, active, "/wp-admin/profile.php")
        expect(page.locator("#wp-admin-bar-my-account")).to_be_visible()
        expect(page.locator("#wp-admin-bar-supportwidget")).to_have_count(0)
        expect(page.locator("#supportwidget-js, #supportwidget-fallback")).to_have_count(0)
    with sign_in(chromium, active, "subscriber") as page:
        admin_page(page, active, "/wp-admin/profile.php")
        expect(page.locator("#wp-admin-bar-supportwidget, #supportwidget-js")).to_have_count(0)


def test_the_admin_bar_opens_the_hosted_form_where_the_widget_is_not_loaded(
    active: WordPress, service: WordPressService, chromium: Browser
) -> None:
    configure(active, service.url, service.site_key, service.secret)
    with sign_in(chromium, active, "admin") as page:
        page.goto(active.url + "/")  # the front end: WordPress's admin bar, no widget
        expect(page.locator("#supportwidget-js")).to_have_count(0)
        with page.context.expect_page() as opened:
            page.locator("#wp-admin-bar-supportwidget > a").click()
        form = opened.value
        form.wait_for_load_state()
        assert form.url.startswith(f"{service.url}/s/{service.site_key}")
        expect(form.get_by_role("heading", name="Create a ticket")).to_be_visible()


def test_a_french_user_gets_the_admin_bar_and_widget_in_french(
    active: WordPress, service: WordPressService, chromium: Browser
) -> None:
    configure(active, service.url, service.site_key, service.secret)
    with sign_in(chromium, active, "francoise") as page:
        admin_page(page, active)
        expect(page.locator("#wp-admin-bar-supportwidget > a")).to_have_text("Créer un ticket ?")
        expect(page.locator("#wp-admin-bar-supportwidget-emergency a")).to_have_text(
            "Urgence : site en panne ou piraté"
        )
        expect(page.locator("#supportwidget-js")).to_have_attribute("data-locale", "fr_FR")
        expect(page.get_by_role("button", name="Créer un ticket ?")).to_be_visible()
        page.goto(active.url + "/")  # the front end speaks the site's English
        expect(page.locator("#wp-admin-bar-supportwidget > a")).to_have_text("Créer un ticket ?")


def test_the_widget_stays_out_of_wp_admin_iframes(
    active: WordPress, service: WordPressService, chromium: Browser
) -> None:
    configure(active, service.url, service.site_key, service.secret)
    with sign_in(chromium, active, "admin") as page:
        admin_page(page, active, "/wp-admin/plugin-install.php?tab=plugin-information&plugin=x")
        expect(page.locator("#supportwidget-js")).to_have_count(0)
        admin_page(page, active)
        expect(page.locator("#supportwidget-js")).to_have_count(1)


def save_settings(page: Page, wordpress: WordPress, **fields: str) -> str:
    """Submit the settings form with some fields changed; return the notices shown."""
    page.goto(f"{wordpress.url}/wp-admin/options-general.php?page=supportwidget")
    for field, value in fields.items():
        page.fill(f"#sw-{field}", value)
    with page.expect_navigation():
        page.get_by_role("button", name="Save Changes").click()
    return page.locator(".notice, .error").all_inner_texts()


def stored(wordpress: WordPress) -> dict[str, Any]:
    return wordpress.value("get_option( 'supportwidget_settings' )")


def test_settings_refuse_wrong_values_and_never_show_the_secret(
    active: WordPress, service: WordPressService, chromium: Browser
) -> None:
    configure(active, service.url, service.site_key, service.secret)
    with sign_in(chromium, active, "admin") as page:
        for url, message in [
            ("javascript:alert(1)", "must be a web address starting with https://"),
            (service.url + "/widget.js", "without /widget.js"),
        ]:
            notices = " ".join(save_settings(page, active, url=url))
            assert message in notices and "Settings saved." not in notices
            assert stored(active)["service_url"] == service.url
        notices = " ".join(save_settings(page, active, key="wrong-key-123"))
        assert "does not know this site key" in notices
        assert stored(active)["site_key"] == service.site_key
        notices = " ".join(save_settings(page, active, secret="f" * 64))
        assert "The site secret is wrong" in notices
        assert stored(active)["site_secret"] == service.secret
        assert service.secret not in page.content()
        # An empty secret field keeps the saved secret.
        notices = " ".join(save_settings(page, active, phone="+33 1 23 45 67 89"))
        assert stored(active)["site_secret"] == service.secret
        assert stored(active)["phone"] == "+33 1 23 45 67 89"
        assert service.secret not in page.content()


def test_settings_warn_but_save_while_the_service_is_down(
    active: WordPress, down_url: str, chromium: Browser
) -> None:
    configure(active, "", "")
    with sign_in(chromium, active, "admin") as page:
        notices = " ".join(
            save_settings(page, active, url=down_url, key="k3yAbC_-123456", secret="a" * 64)
        )
        assert "Saved, but not checked" in notices and "could not be reached" in notices
        assert stored(active)["service_url"] == down_url


def test_heartbeat_runs_every_five_minutes_and_reports_a_changed_core_file_once(
    active: WordPress, service: WordPressService, chromium: Browser
) -> None:
    configure(active, service.url, service.site_key, service.secret)
    assert active.value("wp_get_schedules()['supportwidget_five_minutes']['interval']") == 300
    assert (
        active.value("wp_get_schedule( 'supportwidget_heartbeat' )") == "supportwidget_five_minutes"
    )
    active.php("delete_transient( 'supportwidget_core_checksums' );")
    active.due_now("supportwidget_heartbeat")
    active.run_cron()
    beat = service.query(lambda: db.session.scalar(sa.select(SiteHeartbeat)))
    assert beat is not None, "no heartbeat arrived"
    assert beat.wordpress == "6.1.9" and beat.php.startswith("8.")
    assert {"Supportwidget": "0.2.0"}.items() <= {
        p["name"]: p["version"] for p in beat.plugins
    }.items()
    assert beat.core_status == "ok" and beat.core["checked"] > 1000

    try:
        version = active.root / "wp-includes" / "version.php"
        version.write_text(version.read_text() + "\n// changed\n")
        (active.root / "wp-includes" / "shell.php").write_text("<?php // dropped in\n")
        for _ in range(2):  # the same change twice: one ticket
            active.due_now("supportwidget_heartbeat")
            active.run_cron()
        tickets = service.query(lambda: db.session.scalars(sa.select(Ticket)).all())
        assert [t.subject for t in tickets] == ["Possibly hacked: 2 modified WordPress core files"]
        assert "modified: wp-includes/version.php" in tickets[0].description
        assert "added: wp-includes/shell.php" in tickets[0].description
        mail = service.smtp.wait_for(2)
        assert any("Possibly hacked" in m["Subject"] for m in mail)
    finally:
        active.restore_core_files()
    with sign_in(chromium, active, "admin") as page:
        page.goto(f"{active.url}/wp-admin/options-general.php?page=supportwidget")
        expect(page.locator("#supportwidget-last-heartbeat")).to_contain_text("core files changed")


def deleting(response: Any) -> bool:
    """Tell whether a response answers the Plugins page's request to delete a plugin."""
    return "admin-ajax.php" in response.url and "action=delete-plugin" in (
        response.request.post_data or ""
    )


def test_deleting_the_plugin_removes_its_options_and_heartbeat(
    active: WordPress, service: WordPressService, chromium: Browser
) -> None:
    configure(active, service.url, service.site_key, service.secret)
    active.php("update_option( 'supportwidget_status', array( 'test' => array() ), false );")
    try:
        with sign_in(chromium, active, "admin") as page:
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(f"{active.url}/wp-admin/plugins.php")
            row = page.locator(f"tr[data-plugin='{PLUGIN_FILE}']")
            row.get_by_role("link", name=re.compile("^Deactivate")).click()
            page.wait_for_load_state()
            row = page.locator(f"tr[data-plugin='{PLUGIN_FILE}']")
            with page.expect_response(deleting) as deleted:
                row.get_by_role("link", name=re.compile("^Delete")).click()
            assert deleted.value.json()["success"] is True
            expect(page.get_by_text("Supportwidget was successfully deleted.")).to_be_visible()
        left = active.value(
            "$GLOBALS['wpdb']->get_col( \"SELECT option_name FROM {$GLOBALS['wpdb']->options}"
            " WHERE option_name LIKE '%supportwidget%'\" )"
        )
        assert left == []
        assert active.value("wp_next_scheduled( 'supportwidget_heartbeat' )") is False
    finally:
        active.install_plugin()
