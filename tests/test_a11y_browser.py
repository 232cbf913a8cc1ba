"""Accessibility, look and weight of the widget and the hosted forms, in real Chromium.

axe-core (npm, see package.json) audits the widget dialog on a host page, both
forms and the answer page; keyboard, focus, dark mode, reduced motion, the
gzipped transfer to a usable form and strict CSPs (host page and form page) are
measured the way a browser sees them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame, FrameLocator, Page, Response, expect
from test_widget_browser import FRAME, LABEL, fill_request, form_frame, open_widget, png
from test_widget_script import WIDGET_BUDGET, budget_report, gzipped

if TYPE_CHECKING:
    from browser_fixtures import LiveService

# Chromium against a live server: seconds a test, outside the fast tier.
pytestmark = pytest.mark.slow

pytest_plugins = ["browser_fixtures"]

AXE = Path(__file__).parent.parent / "node_modules" / "axe-core" / "axe.min.js"
needs_axe = pytest.mark.skipif(
    not AXE.exists(), reason="axe-core is not installed: run `npm ci` in the repository root"
)
EMERGENCY_TAB = "Emergency? Site down / hacked / broken"
FORM_BUDGET = 20480


def axe_violations(target: Page | Frame) -> list[dict[str, Any]]:
    """Run axe-core in ``target`` and return its serious and critical violations."""
    # Colour checks of a dialog still fading in would measure a half-transparent dialog.
    target.evaluate("() => Promise.all(document.getAnimations().map(a => a.finished))")
    if not target.evaluate("() => !!window.axe"):
        target.add_script_tag(path=AXE)
    violations = target.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def assert_accessible(target: Page | Frame, where: str) -> None:
    """Fail with axe's own findings when ``target`` has a serious or critical violation."""
    found = axe_violations(target)
    report = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in found
    ]
    assert not found, f"axe on {where}:\n{json.dumps(report, indent=1)}"


def host_url(live: LiveService, path: str = "/admin") -> str:
    """Serve a host page holding the widget; return its URL."""
    return live.host.add(path, live.embed(user_name="Wendy Admin", user_email="wendy@example.com"))


def luminance(css_colour: str) -> float:
    """Return the WCAG relative luminance of an ``rgb()``/``rgba()`` colour."""
    channels = [float(v) / 255 for v in re.findall(r"[\d.]+", css_colour)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.browser
@needs_axe
def test_widget_forms_and_answer_pass_axe(live_server: LiveService, audit_page: Page) -> None:
    page = audit_page
    form = open_widget(page, host_url(live_server))
    expect(page.get_by_role("dialog", name="Contact support")).to_be_visible()
    assert_accessible(page, "the host page with the widget dialog open")
    assert_accessible(form_frame(page), "the standard form in the widget")

    page.get_by_role("button", name=EMERGENCY_TAB).click()
    expect(form.get_by_role("heading", name="Report an emergency")).to_be_visible()
    assert_accessible(form_frame(page), "the emergency form")
    form.get_by_role("button", name="Page the on-call team").click()
    expect(form.locator(".form-errors")).to_be_focused()
    assert_accessible(form_frame(page), "the emergency form showing its errors")

    form.get_by_role("link", name="create a normal ticket").click()
    fill_request(form)
    form.locator("input[type=file]").set_input_files(
        files=[{"name": "shot.png", "mimeType": "image/png", "buffer": png()}]
    )
    expect(form.locator("#thumbs li")).to_have_count(1)
    assert_accessible(form_frame(page), "the standard form with a screenshot attached")
    form.get_by_role("button", name="Cover private details in shot.png").click()
    expect(form.get_by_role("dialog", name="Cover private details")).to_be_visible()
    assert_accessible(form_frame(page), "the redaction editor")
    page.keyboard.press("Escape")
    expect(form.get_by_role("dialog", name="Cover private details")).to_be_hidden()
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#sw-result")).to_contain_text("SUP-")
    assert_accessible(form_frame(page), "the answer page")


KEYBOARD_WALK = """() => {
  const el = document.activeElement;
  if (el === document.body) return {key: null};
  const s = getComputedStyle(el);
  return {key: el.id || el.getAttribute('aria-label') || el.textContent.trim(),
          visible: el.matches(':focus-visible'),
          ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 ||
                s.boxShadow !== 'none'};
}"""

CONTROLS = """() => Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), textarea, select'))
  .filter(el => !el.disabled && el.getClientRects().length && !el.closest('dialog:not([open])'))
  .map(el => el.id || el.getAttribute('aria-label') || el.textContent.trim())"""


@pytest.mark.browser
def test_keyboard_reaches_every_control_with_visible_focus(
    live_server: LiveService, page: Page
) -> None:
    page.goto(f"{live_server.url}/s/{live_server.site_key}")
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "shot.png", "mimeType": "image/png", "buffer": png()}]
    )
    expect(page.locator("#thumbs li")).to_have_count(1)
    expected = page.evaluate(CONTROLS)
    assert "Cover private details in shot.png" in expected and "Send request" in expected

    page.locator("body").focus()
    reached: list[dict[str, Any]] = []
    for _ in range(len(expected) + 5):
        page.keyboard.press("Tab")
        step = page.evaluate(KEYBOARD_WALK)
        # Past the last control, focus goes to the browser, then starts over.
        if step["key"] is None or reached and step["key"] == reached[0]["key"]:
            break
        # A date input takes one Tab per part (day, month, year).
        if not reached or step["key"] != reached[-1]["key"]:
            reached.append(step)
    assert [s["key"] for s in reached] == expected, "Tab order differs from document order"
    hidden = [s["key"] for s in reached if not (s["visible"] and s["ring"])]
    assert not hidden, f"focus is not visible on {hidden}"


@pytest.mark.browser
def test_errors_are_tied_to_their_fields_and_the_answer_is_announced(
    live_server: LiveService, page: Page
) -> None:
    page.goto(f"{live_server.url}/s/{live_server.site_key}/emergency")
    page.get_by_role("button", name="Page the on-call team").click()
    expect(page.locator(".form-errors")).to_be_focused()
    errors = page.locator("#sw-form .error[id]:not([hidden])")
    assert errors.count() >= 4  # category, subject, description, name, e-mail, consent
    for error_id in errors.evaluate_all("els => els.map(e => e.id)"):
        owner = page.locator(f"[aria-describedby~='{error_id}']")
        expect(owner).to_have_count(1)
        text = page.locator(f"#{error_id}").inner_text()
        # Chromium's accessibility tree, not just the attribute: the message is announced.
        expect(owner).to_have_accessible_description(re.compile(re.escape(text.strip("⚠ "))))
    expect(page.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")

    page.goto(f"{live_server.url}/s/{live_server.site_key}")
    fill_request(page, name="Jane Owner")
    page.get_by_role("button", name="Send request").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text(re.compile(r"Your reference: SUP-\d+"))
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_be_focused()


STILL = """el => { const s = getComputedStyle(el);
  return [s.animationName, s.transitionDuration, s.backgroundColor] }"""


@pytest.mark.browser
def test_dark_scheme_and_reduced_motion_are_respected(live_server: LiveService, page: Page) -> None:
    page.emulate_media(color_scheme="dark", reduced_motion="reduce")
    form = open_widget(page, host_url(live_server))
    dialog = page.get_by_role("dialog", name="Contact support")
    animation, transition, background = dialog.evaluate(STILL)
    assert (animation, transition) == ("none", "0s")
    assert luminance(background) < 0.05, background
    body = form.locator("body").evaluate(STILL)
    assert luminance(body[2]) < 0.05, body
    field = form.get_by_label("Subject").evaluate("el => getComputedStyle(el).color")
    assert luminance(field) > 0.6, "text in dark mode must be light"

    form.locator("input[type=file]").set_input_files(
        files=[{"name": "shot.png", "mimeType": "image/png", "buffer": png()}]
    )
    form.get_by_role("button", name="Cover private details in shot.png").click()
    editor = form.get_by_role("dialog", name="Cover private details")
    expect(editor).to_be_visible()
    animation, transition, background = editor.evaluate(STILL)
    assert (animation, transition) == ("none", "0s")
    assert luminance(background) < 0.05
    form.get_by_role("button", name="Cancel").click()

    # Without the preference the editor does animate: the check above can fail.
    page.emulate_media(reduced_motion="no-preference")
    form.get_by_role("button", name="Cover private details in shot.png").click()
    assert editor.evaluate(STILL)[0] == "pop"


def transfer(page: Page, live: LiveService) -> dict[str, bytes]:
    """Open the widget and return the body of each service response it fetched."""
    bodies: dict[str, bytes] = {}
    unreadable: list[str] = []

    def keep(response: Response) -> None:
        # Read at once: Chromium drops a frame's bodies when that frame navigates.
        name = response.url[len(live.url) :].split("?")[0]
        if not response.url.startswith(live.url):
            return
        try:
            bodies[name] = response.body()
        except PlaywrightError:
            unreadable.append(name)

    page.on("response", keep)
    form: FrameLocator = open_widget(page, host_url(live, "/weigh"))
    # Usable: the form's script answered the loader and filled the user's name.
    expect(form.get_by_label("Your name")).to_have_value("Wendy Admin")
    page.remove_listener("response", keep)
    # Only the loader's no-cors health probe is opaque; it is not part of the form.
    assert unreadable in ([], ["/healthz"]), unreadable
    return bodies


@pytest.mark.browser
def test_transfer_to_a_usable_form_stays_small(live_server: LiveService, page: Page) -> None:
    bodies = transfer(page, live_server)
    sizes = {name: gzipped(body) for name, body in bodies.items()}
    total = sum(sizes.values())
    print("\n" + budget_report(bodies["/widget.js"]))
    print(f"everything to a usable form, gzip -9: {total:,} B of a {FORM_BUDGET:,} B budget:")
    for name, size in sizes.items():
        print(f"  {size:6d} B  {name}")
    assert {"/widget.js", "/static/form.js", "/static/form.css"} <= set(sizes)
    assert f"/s/{live_server.site_key}" in sizes
    assert sizes["/widget.js"] <= WIDGET_BUDGET
    assert total <= FORM_BUDGET
    assert page.locator(FRAME).count() == 1 and page.get_by_role("button", name=LABEL).count() == 1


# Strict CSP: every frame records violations where the test can read them.
WATCH_CSP = """addEventListener('securitypolicyviolation',
  e => (window.cspViolations = window.cspViolations || []).push(e.violatedDirective))"""


@pytest.mark.browser
@pytest.mark.parametrize("nonce", ["r4nd0m", None])
def test_widget_falls_back_to_data_nonce_without_constructable_stylesheets(
    live_server: LiveService, page: Page, nonce: str | None
) -> None:
    # Browsers before constructable stylesheets (Safari < 16.4) lack replaceSync.
    page.add_init_script("delete CSSStyleSheet.prototype.replaceSync; " + WATCH_CSP)
    csp = (
        f"default-src 'none'; script-src {live_server.url}; style-src 'nonce-r4nd0m'; "
        f"frame-src {live_server.url}; connect-src {live_server.url}"
    )
    embed = live_server.embed(**({"nonce": nonce} if nonce else {}))
    page.goto(live_server.host.add("/nonce", embed, headers={"Content-Security-Policy": csp}))
    launcher = page.get_by_role("button", name=LABEL)
    position = launcher.evaluate("b => getComputedStyle(b).position")
    violations = page.evaluate("() => window.cspViolations || []")
    if nonce:
        assert position == "fixed" and violations == []
    else:
        # Without the nonce the host's CSP refuses the style: the test can tell.
        assert position == "static" and "style-src-elem" in violations


@pytest.mark.browser
def test_form_page_csp_refuses_inline_code_and_the_form_needs_none(
    live_server: LiveService, page: Page
) -> None:
    page.add_init_script(WATCH_CSP)
    form = open_widget(page, host_url(live_server, "/strict-form"))
    fill_request(form)
    form.locator("input[type=file]").set_input_files(
        files=[{"name": "shot.png", "mimeType": "image/png", "buffer": png()}]
    )
    expect(form.locator("#thumbs img")).to_have_count(1)
    frame = form_frame(page)
    assert frame.evaluate("() => window.cspViolations || []") == []
    injected = frame.evaluate(
        """() => { const s = document.createElement('script');
             s.textContent = 'window.inlineRan = true'; document.body.append(s);
             return !!window.inlineRan }"""
    )
    assert injected is False
    frame.wait_for_function("() => (window.cspViolations || []).includes('script-src-elem')")
