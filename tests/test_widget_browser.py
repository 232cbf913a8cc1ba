"""The embeddable widget and the hosted form's script, driven in real Chromium.

A host page on another origin embeds widget.js from the live service; the tests
click, type, paste and drop like a client would and check what staff receive.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import Browser, Frame, FrameLocator, Page, expect

from supportwidget.intake import identity
from supportwidget.models import Site, Ticket, db

from browser_fixtures import embed_tag, fresh_page
from conftest import form_token, standard_fields

if TYPE_CHECKING:
    from browser_fixtures import LiveService

# Chromium against a live server: seconds a test, outside the fast tier.
pytestmark = pytest.mark.slow

pytest_plugins = ["browser_fixtures"]

# Rules a careless theme or admin plugin might ship; the widget must survive them all.
HOSTILE_CSS = """
* { font-family: "Comic Sans MS", cursive !important; color: #0f0 !important; }
body > * { opacity: .2 !important; transform: scale(.5) !important; }
button { display: none !important; background: magenta !important; }
div, iframe, [role=dialog] { display: none !important; }
"""

LABEL = "Create a ticket?"
EMERGENCY_TAB = "Emergency? Site down / hacked / broken"
FRAME = "iframe[title='Support request form']"


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """Return a real PNG of ``size``."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def newest_ticket(live: LiveService) -> Ticket:
    """Return the newest ticket with its attachments loaded."""

    def load() -> Ticket:
        ticket = db.session.scalars(sa.select(Ticket).order_by(Ticket.id.desc())).first()
        assert ticket is not None, "no ticket stored"
        ticket.attachments  # noqa: B018 - load before the session closes
        db.session.expunge(ticket)
        return ticket

    return live.query(load)


def dashboard(live: LiveService, path: str = "/", **data: str) -> str:
    """Serve a hostile-CSS dashboard that includes the widget twice; return its URL."""
    data.setdefault("user_name", "Wendy Admin")
    data.setdefault("user_email", "wendy@example.com")
    data.setdefault("context", json.dumps({"cms": "WordPress 6.7", "theme": "Astra"}))
    embed = live.embed(**data)
    return live.host.add(path, embed + embed, css=HOSTILE_CSS)


def shadow_focus(page: Page) -> str:
    """Describe what has focus inside the widget's shadow root."""
    return page.evaluate(
        """() => {
          const host = document.querySelector('supportwidget-button');
          if (document.activeElement !== host) return 'outside';
          const el = host.shadowRoot.activeElement;
          if (!el) return 'none';
          if (el.classList.contains('launcher')) return 'launcher';
          return host.shadowRoot.querySelector('[role=dialog]').contains(el) ? 'dialog' : 'other';
        }"""
    )


def open_widget(page: Page, url: str) -> FrameLocator:
    """Load ``url``, open the dialog and return the form's frame once it is ready."""
    page.goto(url)
    page.get_by_role("button", name=LABEL).click()
    form = page.frame_locator(FRAME)
    expect(form.get_by_label("Subject")).to_be_visible()
    return form


def form_frame(page: Page) -> Frame:
    """Return the form's frame for running script inside it."""
    frame = page.locator(FRAME).element_handle().content_frame()
    assert frame is not None
    return frame


def fill_request(form: FrameLocator | Page, name: str | None = None) -> None:
    """Fill the required fields of a standard request."""
    form.get_by_label("Subject").fill("Checkout button does nothing")
    form.get_by_label("Description").fill("Since this morning the checkout button does nothing.")
    if name is not None:
        form.get_by_label("Your name").fill(name)
        form.get_by_label("Your e-mail").fill("jane@example.com")


@pytest.mark.browser
def test_widget_files_a_ticket_with_page_details_and_screenshot(
    live_server: LiveService, page: Page, console: list[str]
) -> None:
    url = dashboard(live_server)
    page.goto(url)
    launcher = page.get_by_role("button", name=LABEL)
    expect(launcher).to_have_count(1)  # included twice, one button
    expect(launcher).to_be_visible()
    assert any("loaded twice" in line for line in console)
    # The host's hostile CSS reaches neither the font nor the colours.
    style = launcher.evaluate("b => [getComputedStyle(b).fontFamily, getComputedStyle(b).color]")
    assert "Comic" not in style[0] and style[1] == "rgb(255, 255, 255)"

    launcher.click()
    dialog = page.get_by_role("dialog", name="Contact support")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    assert shadow_focus(page) == "dialog"
    expect(page.get_by_role("button", name=EMERGENCY_TAB)).to_be_visible()

    form = page.frame_locator(FRAME)
    # data-user-* arrived by postMessage and filled the empty fields.
    expect(form.get_by_label("Your name")).to_have_value("Wendy Admin")
    expect(form.get_by_label("Your e-mail")).to_have_value("wendy@example.com")
    # A refused submission shows the server's messages in place, problems first.
    form.get_by_role("button", name="Send request").click()
    expect(form.locator(".form-errors")).to_be_focused()
    expect(form.locator("#subject-error")).to_have_text("Please give a short subject.")
    fill_request(form)
    form.locator("input[type=file]").set_input_files(
        files=[{"name": "shot.png", "mimeType": "image/png", "buffer": png()}]
    )
    expect(form.locator("#thumbs li")).to_have_count(1)
    form.get_by_role("button", name="Send request").click()

    result = form.locator("#sw-result")
    expect(result).to_contain_text(re.compile(r"SUP-\d+"))
    expect(result).to_be_focused()
    reference = result.get_attribute("data-reference")
    expect(page.get_by_text(f"Request {reference} sent.")).to_be_visible()

    ticket = newest_ticket(live_server)
    assert ticket.reference == reference
    assert ticket.page_meta["url"] == url
    assert ticket.page_meta["title"] == "Dashboard ‹ Acme — WordPress"
    assert re.fullmatch(r"\d+x\d+", ticket.page_meta["viewport"])
    assert ticket.page_meta["context"] == {"cms": "WordPress 6.7", "theme": "Astra"}
    assert [a.width for a in ticket.attachments] == [64]

    mails = live_server.smtp.wait_for(3)
    staff = [m for m in mails if "alice@agency.test" in m["To"]]
    assert staff and reference in staff[0]["Subject"]
    assert "WordPress 6.7" in staff[0].as_string()


@pytest.mark.browser
def test_escape_in_the_form_closes_and_focus_returns(live_server: LiveService, page: Page) -> None:
    form = open_widget(page, dashboard(live_server))
    subject = form.get_by_label("Subject")
    subject.fill("Half-typed draft")

    # Shift+Tab from the close button wraps to the form: focus stays in the dialog.
    page.get_by_role("button", name="Close").focus()
    page.keyboard.press("Shift+Tab")
    assert shadow_focus(page) == "dialog"

    subject.click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert shadow_focus(page) == "launcher"

    # The draft survives closing the dialog, and reloading the page.
    page.get_by_role("button", name=LABEL).click()
    expect(subject).to_have_value("Half-typed draft")
    page.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert shadow_focus(page) == "launcher"
    page.reload()
    page.get_by_role("button", name=LABEL).click()
    expect(subject).to_have_value("Half-typed draft")


def forge_context(page: Page, opener_url: str, form_url: str) -> Page:
    """From ``opener_url``, open the form and post it a widget context message."""
    page.goto(opener_url)
    with page.expect_popup() as popup_info:
        page.evaluate("url => { window.form = window.open(url) }", form_url)
    popup = popup_info.value
    expect(popup.get_by_label("Subject")).to_be_visible()
    popup.evaluate(
        """() => { window.flushed = new Promise(resolve =>
             addEventListener('message', e => e.data === 'flush' && resolve())) }"""
    )
    page.evaluate(
        """() => {
          window.form.postMessage({type: 'supportwidget:context', page: {url: location.href},
            user: {name: 'Mallory', email: 'mallory@example.org'}, context: {cms: 'forged'}}, '*');
          window.form.postMessage('flush', '*');
        }"""
    )
    # Messages arrive in order: once 'flush' is in, the context message was handled.
    popup.evaluate("() => window.flushed")
    return popup


@pytest.mark.browser
def test_form_takes_page_details_only_from_allowed_origins(
    live_server: LiveService, page: Page
) -> None:
    live_server.host.add("/blank", "")
    form_url = f"{live_server.url}/s/{live_server.site_key}"

    popup = forge_context(page, live_server.host.other_origin + "/blank", form_url)
    expect(popup.get_by_label("Your name")).to_have_value("")
    fill_request(popup, name="Jane Owner")
    popup.get_by_role("button", name="Send request").click()
    expect(popup.locator("#sw-result")).to_contain_text("SUP-")
    assert newest_ticket(live_server).page_meta == {}
    popup.close()

    # The same message from the site's own origin is taken.
    popup = forge_context(page, live_server.host.origin + "/blank", form_url)
    expect(popup.get_by_label("Your name")).to_have_value("Mallory")
    fill_request(popup)
    popup.get_by_role("button", name="Send request").click()
    expect(popup.locator("#sw-result")).to_contain_text("SUP-")
    assert newest_ticket(live_server).page_meta["context"] == {"cms": "forged"}


PANEL = "[role=dialog] [role=alert]"


def expect_clean_panel(
    page: Page, why: str, phone: str, email: str, emergency: str = EMERGENCY_TAB
) -> None:
    """Check the dialog shows why, the ways out and the contacts, and no frame at all."""
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(panel.locator("p").first).to_have_text(why)
    expect(page.locator(FRAME)).to_be_hidden()
    expect(panel.get_by_role("link", name=emergency)).to_have_attribute(
        "href", re.compile(r"/s/[^/]+/emergency(\?locale=\w+)?$")
    )
    expect(panel.get_by_role("link", name=phone)).to_have_attribute(
        "href", "tel:" + re.sub(r"[^\d+]", "", phone)
    )
    expect(panel.get_by_role("link", name=email)).to_have_attribute("href", "mailto:" + email)


@pytest.mark.browser
def test_widget_on_an_origin_not_allowed_offers_the_form_in_a_new_tab(
    live_server: LiveService, page: Page
) -> None:
    live_server.app.config.update(AGENCY_PHONE="+44 20 7946 0000", AGENCY_EMAIL="help@agency.test")
    dashboard(live_server, "/elsewhere")
    page.goto(live_server.host.other_origin + "/elsewhere")
    page.get_by_role("button", name=LABEL).click()
    # The agency's contacts come from the service's settings (widget.json).
    expect_clean_panel(
        page,
        "This button is not set up for this page.",
        "+44 20 7946 0000",
        "help@agency.test",
    )
    with page.expect_popup() as popup_info:
        page.get_by_role("link", name="Open the form in a new tab").click()
    popup = popup_info.value
    fill_request(popup, name="Jane Owner")
    popup.get_by_role("button", name="Send request").click()
    expect(popup.locator("#sw-result")).to_contain_text("SUP-")
    assert newest_ticket(live_server).page_meta == {}


@pytest.mark.browser
def test_a_host_page_whose_csp_forbids_the_frame_shows_the_clean_panel(
    live_server: LiveService, page: Page
) -> None:
    embed = live_server.embed(phone="+44 20 7946 0999", email="desk@agency.test")
    csp = f"default-src 'self'; script-src 'self' {live_server.url}"
    url = live_server.host.add("/csp", embed, headers={"Content-Security-Policy": csp})
    page.goto(url)
    page.get_by_role("button", name=LABEL).click()
    expect_clean_panel(
        page,
        "This page's settings block the support form.",
        "+44 20 7946 0999",
        "desk@agency.test",
    )
    with page.expect_popup() as popup_info:
        page.get_by_role("link", name="Open the form in a new tab").click()
    expect(popup_info.value.get_by_label("Subject")).to_be_visible()


@pytest.mark.browser
def test_an_unknown_site_key_shows_the_clean_panel(live_server: LiveService, page: Page) -> None:
    embed = embed_tag(live_server.url, "no-such-key", phone="+44 20 7946 0999", email="d@a.test")
    page.goto(live_server.host.add("/unknown", embed))
    page.get_by_role("button", name=LABEL).click()
    expect_clean_panel(
        page, "This button is not set up for this page.", "+44 20 7946 0999", "d@a.test"
    )


@pytest.mark.browser
def test_widget_works_on_a_strict_csp_page(
    live_server: LiveService, page: Page, console: list[str]
) -> None:
    embed = live_server.embed(color="#ffd400", label="Need help?")
    csp = (
        f"default-src 'none'; script-src {live_server.url}; style-src 'none'; "
        f"frame-src {live_server.url}; connect-src {live_server.url}"
    )
    url = live_server.host.add("/strict", embed, headers={"Content-Security-Policy": csp})
    page.goto(url)
    launcher = page.get_by_role("button", name="Need help?")
    expect(launcher).to_be_visible()
    # The constructed stylesheet applied: fixed, yellow, and black text for contrast.
    looks = launcher.evaluate(
        "b => { const s = getComputedStyle(b); return [s.position, s.backgroundColor, s.color] }"
    )
    assert looks == ["fixed", "rgb(255, 212, 0)", "rgb(0, 0, 0)"]
    launcher.click()
    expect(page.get_by_role("dialog", name="Contact support")).to_be_visible()
    form = page.frame_locator(FRAME)
    expect(form.get_by_label("Subject")).to_be_visible()

    # The emergency tab switches the frame; the form's own link switches back.
    emergency_tab = page.get_by_role("button", name=EMERGENCY_TAB)
    emergency_tab.click()
    expect(form.get_by_role("heading", name="Report an emergency")).to_be_visible()
    expect(emergency_tab).to_have_attribute("aria-pressed", "true")
    form.get_by_role("link", name="create a normal ticket").click()
    expect(form.get_by_role("heading", name="Create a ticket")).to_be_visible()
    expect(page.get_by_role("button", name="Request")).to_have_attribute("aria-pressed", "true")
    assert not [line for line in console if "Content Security Policy" in line]


@pytest.mark.browser
def test_pasted_and_dropped_screenshots_are_uploaded(live_server: LiveService, page: Page) -> None:
    form = open_widget(page, dashboard(live_server))
    frame = form_frame(page)
    images = {
        "dropped.png": base64.b64encode(png()).decode(),
        "pasted.png": base64.b64encode(png((3000, 1200), (20, 90, 200))).decode(),
        "spare.png": base64.b64encode(png((10, 10))).decode(),
    }
    frame.evaluate(
        """images => {
          const file = (name, type, b64) => new File(
            [Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name, {type});
          const carrying = (...files) => {
            const dt = new DataTransfer();
            files.forEach(f => dt.items.add(f));
            return dt;
          };
          const zone = document.getElementById('screenshots-zone');
          zone.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true,
            dataTransfer: carrying(file('dropped.png', 'image/png', images['dropped.png']),
                                   file('notes.txt', 'text/plain', btoa('not an image')))}));
          document.getElementById('subject')
            .dispatchEvent(new ClipboardEvent('paste', {bubbles: true, cancelable: true,
              clipboardData: carrying(file('pasted.png', 'image/png', images['pasted.png']))}));
          zone.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true,
            dataTransfer: carrying(file('spare.png', 'image/png', images['spare.png']))}));
        }""",
        images,
    )
    thumbs = form.locator("#thumbs li")
    # Scaling the 3000 px paste takes the browser a while on a busy machine.
    expect(thumbs).to_have_count(3, timeout=20_000)
    expect(form.get_by_role("alert")).to_contain_text("notes.txt is not an image")
    form.get_by_role("button", name="Remove spare.png").click()
    expect(thumbs).to_have_count(2)
    expect(thumbs.nth(0)).to_contain_text("dropped.png")

    fill_request(form)
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#sw-result")).to_contain_text("SUP-")
    ticket = newest_ticket(live_server)
    sizes = sorted((a.width, a.height) for a in ticket.attachments)
    # The 3000 px paste was scaled to 2560 px in the browser, still a PNG.
    assert sizes == [(64, 48), (2560, 1024)]
    assert sorted(a.content_type for a in ticket.attachments) == ["image/png", "image/png"]


@pytest.mark.browser
def test_unreachable_service_still_opens_and_says_so(live_server: LiveService, page: Page) -> None:
    # The script comes from an address where nothing listens (its copy served by the
    # browser's router), so the iframe and the health check really fail.
    dead = "http://127.0.0.1:9"
    served = page.request.get(f"{live_server.url}/widget.js").body()
    page.route(
        f"{dead}/widget.js",
        lambda route: route.fulfill(body=served, content_type="text/javascript"),
    )
    embed = (
        f'<script src="{dead}/widget.js" data-site-key="{live_server.site_key}" '
        f'data-locale="de" data-phone="+44 20 7946 0000" '
        f'data-email="help@agency.test"></script>'
    )
    page.goto(live_server.host.add("/down", embed))
    page.get_by_role("button", name="Ticket erstellen?").click()
    expect(page.get_by_role("dialog", name="Support kontaktieren")).to_be_visible()
    # The agency's own fallback contacts, from the embed.
    expect_clean_panel(
        page,
        "Der Support ist gerade nicht erreichbar.",
        "+44 20 7946 0000",
        "help@agency.test",
        "Notfall? Website offline / gehackt / defekt",
    )
    expect(page.get_by_role("link", name="Formular in neuem Tab öffnen")).to_be_visible()


# The page's command queue: calls made before the async script ran wait in supportwidget.q.
QUEUE_STUB = """<script>
window.supportwidget = window.supportwidget ||
  function () { (window.supportwidget.q = window.supportwidget.q || []).push(arguments); };
supportwidget('emergency');
</script>"""


@pytest.mark.browser
def test_calls_queued_before_the_script_loads_are_replayed(
    live_server: LiveService, page: Page
) -> None:
    page.goto(live_server.host.add("/queued", QUEUE_STUB + live_server.embed()))
    dialog = page.get_by_role("dialog", name="Contact support")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("button", name=EMERGENCY_TAB)).to_have_attribute("aria-pressed", "true")
    form = page.frame_locator(FRAME)
    expect(form.get_by_role("heading", name="Report an emergency")).to_be_visible()
    page.evaluate("() => supportwidget('close')")
    expect(dialog).to_be_hidden()


@pytest.mark.browser
def test_an_emergency_asks_its_question_and_the_widget_says_it_is_being_paged(
    live_server: LiveService, page: Page
) -> None:
    form = open_widget(page, dashboard(live_server, "/emergency"))
    page.get_by_role("button", name=EMERGENCY_TAB).click()
    expect(form.get_by_role("heading", name="Report an emergency")).to_be_visible()
    # Only the chosen category's question shows (without JavaScript all three do).
    question = form.get_by_label("What did you see?")
    expect(question).to_be_hidden()
    form.get_by_label("Website seems hacked").check()
    expect(question).to_be_visible()
    expect(form.get_by_label("What can your customers not do?")).to_be_hidden()
    question.fill("The homepage says 'hacked by x'")
    fill_request(form)
    form.get_by_label("I understand and agree").check()
    form.get_by_role("button", name="Page the on-call team").click()
    reference = form.locator("#sw-result").get_attribute("data-reference")
    # The loader says what was filed, in the state's own words, not "Request SUP-n sent."
    expect(
        page.get_by_text(f"Emergency {reference}: the on-call team is being paged.")
    ).to_be_visible()
    expect(page.get_by_text(f"Request {reference} sent.")).to_have_count(0)
    assert newest_ticket(live_server).category_answer == "The homepage says 'hacked by x'"


ATTACH_THREE_WAYS = """images => {
  const file = (name, b64) => new File(
    [Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name, {type: 'image/png'});
  const carrying = (f) => { const dt = new DataTransfer(); dt.items.add(f); return dt; };
  document.getElementById('subject').dispatchEvent(new ClipboardEvent('paste',
    {bubbles: true, cancelable: true, clipboardData: carrying(file('pasted.png', images[0]))}));
  document.getElementById('screenshots-zone').dispatchEvent(new DragEvent('drop',
    {bubbles: true, cancelable: true, dataTransfer: carrying(file('dropped.png', images[1]))}));
}"""


@pytest.mark.browser
def test_screenshots_and_text_survive_a_refused_send(live_server: LiveService, page: Page) -> None:
    form = open_widget(page, dashboard(live_server, "/refused"))
    form.locator("input[type=file]").set_input_files(
        files=[{"name": "uploaded.png", "mimeType": "image/png", "buffer": png()}]
    )
    expect(form.locator("#thumbs li")).to_have_count(1)
    images = [base64.b64encode(png((30, 20), c)).decode() for c in ((0, 90, 0), (0, 0, 90))]
    form_frame(page).evaluate(ATTACH_THREE_WAYS, images)
    expect(form.locator("#thumbs li")).to_have_count(3)
    fill_request(form)
    form.get_by_label("Your e-mail").fill("wendy at example")
    form.get_by_role("button", name="Send request").click()

    # 422: the error shows, the text and all three screenshots are still there.
    expect(form.locator("#email-error")).to_be_visible()
    expect(form.get_by_label("Subject")).to_have_value("Checkout button does nothing")
    kept = form.locator("#kept-thumbs li")
    expect(kept).to_have_count(3)
    for name in ("uploaded.png", "pasted.png", "dropped.png"):
        expect(kept.filter(has_text=name)).to_have_count(1)
        loaded = kept.filter(has_text=name).locator("img").evaluate("i => i.naturalWidth")
        assert loaded > 0, f"{name}: thumbnail did not load"
    expect(form.get_by_role("button", name="Remove pasted.png")).to_be_visible()

    form.get_by_label("Your e-mail").fill("wendy@example.com")
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#sw-result")).to_contain_text("SUP-")
    ticket = newest_ticket(live_server)
    assert sorted(a.filename for a in ticket.attachments) == [
        "dropped.png",
        "pasted.png",
        "uploaded.png",
    ]


@pytest.mark.browser
def test_a_kept_screenshot_can_be_removed_before_sending_again(
    live_server: LiveService, page: Page
) -> None:
    form = open_widget(page, dashboard(live_server, "/remove-kept"))
    form.locator("input[type=file]").set_input_files(
        files=[
            {"name": "keep.png", "mimeType": "image/png", "buffer": png()},
            {"name": "oops.png", "mimeType": "image/png", "buffer": png((20, 20))},
        ]
    )
    expect(form.locator("#thumbs li")).to_have_count(2)
    fill_request(form)
    form.get_by_label("Description").fill("short")
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#kept-thumbs li")).to_have_count(2)
    form.get_by_role("button", name="Remove oops.png").click()
    expect(form.locator("#kept-thumbs li:visible")).to_have_count(1)
    form.get_by_label("Description").fill("Since this morning the checkout button does nothing.")
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#sw-result")).to_contain_text("SUP-")
    assert [a.filename for a in newest_ticket(live_server).attachments] == ["keep.png"]


@pytest.mark.browser
def test_without_javascript_kept_screenshots_show_and_a_box_removes_one(
    live_server: LiveService, chromium: Browser
) -> None:
    with fresh_page(chromium, java_script_enabled=False) as page:
        page.goto(f"{live_server.url}/s/{live_server.site_key}")
        # Without JavaScript nothing can be pasted or dropped, and the page does not say so.
        expect(page.locator("#screenshots-hint")).to_have_text(
            "PNG, JPEG, WebP or GIF, at most 10 MB each."
        )
        page.locator("input[type=file]").set_input_files(
            files=[
                {"name": "keep.png", "mimeType": "image/png", "buffer": png()},
                {"name": "oops.png", "mimeType": "image/png", "buffer": png((20, 20))},
            ]
        )
        fill_request(page, name="Jane Owner")
        page.get_by_label("Your e-mail").fill("jane")
        page.get_by_role("button", name="Send request").click()
        expect(page.locator("#kept-thumbs li")).to_have_count(2)
        page.get_by_label("Remove oops.png").check()
        page.get_by_label("Your e-mail").fill("jane@example.com")
        page.get_by_role("button", name="Send request").click()
        expect(page.locator("#sw-result")).to_contain_text("SUP-")
    assert [a.filename for a in newest_ticket(live_server).attachments] == ["keep.png"]


@pytest.mark.browser
def test_errors_name_their_fields_state_limits_and_clear_once_fixed(
    live_server: LiveService, page: Page
) -> None:
    form = open_widget(page, dashboard(live_server, "/errors", user_email="not-an-address"))
    # The limits are said before anything goes wrong.
    expect(form.locator("#screenshots-hint")).to_have_text(
        "PNG, JPEG, WebP or GIF, at most 10 MB each. You can also paste or drop images here."
    )
    form.locator("input[type=file]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    expect(form.locator("#screenshots-notice")).to_have_text(
        "notes.txt is not an image. Please attach PNG, JPEG, WebP or GIF files."
    )
    form.get_by_role("button", name="Send request").click()

    summary = form.locator(".form-errors")
    expect(summary).to_be_focused()
    lines = summary.locator("li")
    expect(lines).to_have_text(
        [
            "Subject: Please give a short subject.",
            "Description: Please describe the problem.",
            "Your e-mail: Please give a valid e-mail address.",
        ]
    )
    # Each line links its field, and following it puts the caret there.
    summary.get_by_role("link", name="Description").click()
    expect(form.get_by_label("Description")).to_be_focused()

    # Fixing a field clears its error, its red border and its line; the others stay.
    form.get_by_label("Subject").fill("Checkout button does nothing")
    expect(form.locator("#subject-error")).to_have_count(0)
    expect(form.get_by_label("Subject")).to_have_attribute("aria-invalid", "false")
    expect(lines).to_have_count(2)
    form.get_by_label("Description").fill("too short")
    expect(form.locator("#description-error")).to_be_visible()  # still too short
    form.get_by_label("Description").fill("Since this morning the checkout button does nothing.")
    form.get_by_label("Your e-mail").fill("wendy@example.com")
    expect(summary).to_be_hidden()


def focused_in_form(page: Page) -> str:
    """Name what has focus inside the form's frame ('' when focus is not in the frame)."""
    if page.evaluate("() => document.activeElement.tagName") != "SUPPORTWIDGET-BUTTON":
        return ""
    frame = form_frame(page)
    return frame.evaluate(
        """() => { const el = document.activeElement;
                   return el === document.body ? 'body' : el.id || el.textContent.trim() }"""
    )


@pytest.mark.browser
def test_keyboard_starts_at_the_first_field_and_tabs_in_the_layout_s_order(
    live_server: LiveService, page: Page
) -> None:
    page.goto(dashboard(live_server, "/keys"))
    page.get_by_role("button", name=LABEL).focus()
    page.keyboard.press("Enter")
    form = page.frame_locator(FRAME)
    subject = form.get_by_label("Subject")
    expect(subject).to_be_focused()
    # The focus ring shows (not just a caret): the form's :focus-visible outline.
    assert subject.evaluate("el => el.matches(':focus-visible')")
    assert subject.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"

    # Tab walks the form top to bottom to Send, then the dialog's header and tabs, then back.
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        where = focused_in_form(page)
        if (
            where
            and shadow_focus(page) == "dialog"
            and page.evaluate(
                "() => document.querySelector('supportwidget-button').shadowRoot.activeElement"
                ".tagName"
            )
            == "IFRAME"
        ):
            seen.append(where)
            if where == "Send request":
                break
    assert seen[:2] == ["description", "screenshots"] and seen[-1] == "Send request"
    assert seen.index("name") < seen.index("email") < seen.index("Send request")
    outside = []
    for _ in range(3):
        page.keyboard.press("Tab")
        outside.append(
            page.evaluate(
                "() => { const el = document.querySelector('supportwidget-button')"
                ".shadowRoot.activeElement;"
                " return el.getAttribute('aria-label') || el.textContent }"
            )
        )
    assert outside == ["Close", "Request", EMERGENCY_TAB]
    page.keyboard.press("Tab")
    assert focused_in_form(page) not in ("", "body")  # back in the form, at its first link


@pytest.mark.browser
def test_a_signed_in_user_sees_their_own_recent_requests_only(
    live_server: LiveService, page: Page
) -> None:
    http = live_server.app.test_client()
    path = f"/s/{live_server.site_key}"
    filed = [
        ("wendy@example.com", "Checkout button does nothing"),
        ("Wendy@Example.com", "Logo is blurry on phones"),
        ("mallory@example.org", "Someone else's private request"),
    ]
    for email, subject in filed:
        data = standard_fields(email=email, subject=subject, form_token=form_token(http, path))
        assert http.post(path, data=data).status_code == 200
    secret = live_server.query(lambda: Site.find_by_key(live_server.site_key).secret)
    stamp = int(time.time())
    signature = identity.sign(
        secret, live_server.site_key, "wendy@example.com", "Wendy Admin", stamp
    )
    form = open_widget(
        page,
        live_server.host.add(
            "/mine",
            live_server.embed(
                user_name="Wendy Admin", user_email="wendy@example.com", user_signature=signature
            ),
        ),
    )
    mine = form.get_by_role("region", name="Your recent requests")
    expect(mine.get_by_role("listitem")).to_have_count(2)
    expect(mine.get_by_role("listitem").nth(0)).to_contain_text("Logo is blurry on phones")
    expect(mine.get_by_role("listitem").nth(0)).to_contain_text("New")
    expect(mine).not_to_contain_text("Someone else")
    link = mine.get_by_role("link", name=re.compile("Checkout button does nothing"))
    with page.expect_popup() as popup_info:
        link.click()
    status = popup_info.value
    expect(
        status.get_by_role("heading", name=re.compile("Checkout button does nothing"))
    ).to_be_visible()
