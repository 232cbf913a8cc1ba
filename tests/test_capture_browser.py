"""Screenshots taken and redacted in the browser, checked pixel by pixel where staff see them.

"Capture this page" runs against Chromium's real tab capture: the capturing
browser is started with ``--auto-accept-this-tab-capture``, which answers
getDisplayMedia with the calling tab, so the frame holds the host page's pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image
from playwright.sync_api import FrameLocator, Page, expect
from test_widget_browser import fill_request, form_frame, newest_ticket, open_widget, png

from supportwidget.platform.screenshots import stored_path

if TYPE_CHECKING:
    from browser_fixtures import LiveService

# Chromium against a live server: seconds a test, outside the fast tier.
pytestmark = pytest.mark.slow

pytest_plugins = ["browser_fixtures"]

HOST_GREEN = (0, 160, 80)
SHOT_RED = (200, 30, 30)
# Every frame, the form's included, records CSP violations where the test can read them.
WATCH_CSP = """addEventListener('securitypolicyviolation',
  e => (window.cspViolations = window.cspViolations || []).push(e.violatedDirective))"""


def stored_image(live: LiveService) -> Image.Image:
    """Return the newest ticket's only attachment, read from the upload folder."""
    ticket = newest_ticket(live)
    assert len(ticket.attachments) == 1
    path = stored_path(ticket.attachments[0].sha256, live.app.config["UPLOAD_FOLDER"])
    return Image.open(Path(path)).convert("RGB")


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], slack: int = 25) -> bool:
    """Tell whether ``pixel`` is ``colour`` give or take video colour conversion."""
    # Under the dialog's #0009 overlay the green would be (0, 64, 32): far outside the slack.
    return all(abs(a - b) <= slack for a, b in zip(pixel, colour, strict=False))


def drag(
    page: Page, form: FrameLocator, start: tuple[float, float], end: tuple[float, float]
) -> None:
    """Drag on the editor's canvas between two points given as fractions of its size."""
    box = form.locator("dialog canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=4)
    page.mouse.up()


@pytest.mark.browser
def test_capture_this_page_attaches_the_host_page_without_the_dialog(
    live_server: LiveService, capture_page: Page
) -> None:
    page = capture_page
    page.context.add_init_script(WATCH_CSP)
    url = live_server.host.add(
        "/green", live_server.embed(), css="html, body { background: rgb(0, 160, 80); }"
    )
    form = open_widget(page, url)
    form.get_by_role("button", name="Capture this page").click()
    thumbs = form.locator("#thumbs li")
    expect(thumbs).to_have_count(1)
    expect(thumbs).to_contain_text("page-capture.png")
    # The dialog came back after the shot, and the form page's CSP allowed every step.
    overlay = page.locator("supportwidget-button").evaluate(
        "h => getComputedStyle(h.shadowRoot.querySelector('.overlay')).opacity"
    )
    assert overlay == "1"
    expect(page.get_by_role("dialog", name="Contact support")).to_be_visible()
    assert form_frame(page).evaluate("() => window.cspViolations || []") == []

    fill_request(form, name="Jane Owner")
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#sw-result")).to_contain_text("SUP-")
    shot = stored_image(live_server)
    width, height = shot.size
    # Headless Chromium captures its window (800 x 600), whatever the emulated viewport.
    assert width >= 600 and height >= 400, shot.size
    # Beside the dialog and behind where it stood: the page itself, not dimmed by the overlay.
    for x, y in ((width // 20, height // 2), (width // 2, height // 2)):
        assert near(shot.getpixel((x, y)), HOST_GREEN), (x, y, shot.getpixel((x, y)))


@pytest.mark.browser
def test_redaction_boxes_are_black_in_the_stored_screenshot(
    live_server: LiveService, page: Page
) -> None:
    page.context.add_init_script(WATCH_CSP)
    form = open_widget(page, live_server.host.add("/redact", live_server.embed()))
    form.locator("input[type=file]").set_input_files(
        files=[
            {"name": "invoice.png", "mimeType": "image/png", "buffer": png((400, 300), SHOT_RED)}
        ]
    )
    edit = form.get_by_role("button", name="Cover private details in invoice.png")
    editor = form.get_by_role("dialog", name="Cover private details")

    # Escape cancels the editor only: the widget's dialog stays open, nothing is covered.
    edit.click()
    expect(editor).to_be_visible()
    drag(page, form, (0.6, 0.6), (0.9, 0.9))
    page.keyboard.press("Escape")
    expect(editor).to_be_hidden()
    expect(page.get_by_role("dialog", name="Contact support")).to_be_visible()
    expect(edit).to_be_focused()

    edit.click()
    undo = form.get_by_role("button", name="Undo last box")
    expect(undo).to_be_disabled()
    drag(page, form, (0.1, 0.1), (0.5, 0.6))
    drag(page, form, (0.6, 0.1), (0.9, 0.4))
    undo.click()  # takes back the second box
    # Finished from the keyboard: Tab reaches Done, Enter keeps the boxes.
    form.get_by_role("button", name="Cancel").focus()
    page.keyboard.press("Tab")
    expect(form.get_by_role("button", name="Done")).to_be_focused()
    page.keyboard.press("Enter")
    expect(editor).to_be_hidden()
    expect(edit).to_be_focused()
    assert form_frame(page).evaluate("() => window.cspViolations || []") == []

    fill_request(form, name="Jane Owner")
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#sw-result")).to_contain_text("SUP-")
    shot = stored_image(live_server)
    assert shot.size == (400, 300)
    assert shot.getpixel((120, 100)) == (0, 0, 0)  # inside the kept box
    assert shot.getpixel((50, 40)) == (0, 0, 0)
    assert shot.getpixel((300, 80)) == SHOT_RED  # the undone box
    assert shot.getpixel((300, 240)) == SHOT_RED  # the cancelled box
    assert shot.getpixel((10, 290)) == SHOT_RED


@pytest.mark.browser
@pytest.mark.parametrize("why", ["no getDisplayMedia", "frame without display-capture"])
def test_capture_button_is_offered_only_where_capture_can_work(
    live_server: LiveService, capture_page: Page, why: str
) -> None:
    page = capture_page
    form_url = f"{live_server.url}/s/{live_server.site_key}?embed=1"
    if why == "no getDisplayMedia":
        # Browsers without screen capture (most mobile ones) lack the method.
        page.add_init_script("delete MediaDevices.prototype.getDisplayMedia")
        embed = f"<iframe src='{form_url}' allow='display-capture' title='Support'></iframe>"
    else:
        embed = f"<iframe src='{form_url}' title='Support'></iframe>"
    allowed = f"<iframe src='{form_url}' allow='display-capture' title='Allowed'></iframe>"
    page.goto(live_server.host.add("/no-capture", embed + allowed))
    refused = page.frame_locator("iframe[title='Support']")
    expect(refused.get_by_label("Subject")).to_be_visible()
    expect(refused.get_by_role("button", name="Capture this page")).to_have_count(0)
    if why != "no getDisplayMedia":
        # The same form in a frame that allows capture offers it.
        offered = page.frame_locator("iframe[title='Allowed']")
        expect(offered.get_by_role("button", name="Capture this page")).to_be_visible()
