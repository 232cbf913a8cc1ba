"""Staff dashboard: sign-in, CSRF, roles, the queue, the ticket page and its actions."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from markupsafe import escape
from PIL import Image

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import (
    Client,
    Notification,
    SlaPause,
    SlaPlan,
    Staff,
    Ticket,
    TimeEntry,
    db,
    utcnow,
)
from supportwidget.notify import messages
from supportwidget.platform.screenshots import clean_screenshot
from supportwidget.staff import dashboard
from supportwidget.tickets import filing as tickets

from conftest import form_token, make_app, seed_site, standard_fields

PASSWORD = "correct horse battery"
XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg/onload=alert(3)>",
    "</textarea><iframe src=javascript:alert(4)>",
    '<a href="javascript:alert(5)">click</a>',
    "{{ 7*7 }}<b>bold</b>",
]


@pytest.fixture
def staff(site):
    """Give the seeded admin (Alice) and agent (Bob) passwords."""
    for member in db.session.scalars(sa.select(Staff)):
        member.set_password(PASSWORD)
    db.session.commit()
    return {m.name: m for m in db.session.scalars(sa.select(Staff))}


def csrf_from(html: str) -> str:
    """Return the CSRF token rendered in a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, email, password=PASSWORD):
    """Sign in through the real form; return the response."""
    token = csrf_from(client.get("/dashboard/login").get_data(as_text=True))
    return client.post(
        "/dashboard/login", data={"email": email, "password": password, "csrf_token": token}
    )


def post_action(client, ticket, action, **data):
    """Submit one of the ticket page's forms with the page's CSRF token."""
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    return client.post(
        f"/dashboard/tickets/{ticket.reference}/{action}",
        data={"csrf_token": csrf_from(page), **data},
    )


REQUESTER = {"name": "Jane Owner", "email": "jane@example.com"}


def new_request(site, **fields):
    """File a standard request through the real workflow."""
    values = {
        "subject": "Contact form broken",
        "description": "The contact form shows an error since this morning.",
        **REQUESTER,
        **fields,
    }
    return tickets.open_standard_request(site, tickets.Request(**values))


def new_emergency(site, **fields):
    """Report an emergency through the real workflow."""
    values = {
        "subject": "Site is down",
        "description": "The whole site shows a 502 error.",
        **REQUESTER,
        **fields,
    }
    return emergencies.open_emergency(site, tickets.Request(**values), "offline", None, True)


def mails_to(smtp_server, address):
    return [m for m in smtp_server.messages if m["To"] == address]


# --- sign-in, sessions, CSRF, roles -------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, site):
    ticket = new_request(site)
    for path in ("/dashboard/", f"/dashboard/tickets/{ticket.reference}"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/dashboard/login")


def test_wrong_password_is_refused_with_a_message(client, staff):
    response = login(client, "bob@agency.test", "guess")
    assert response.status_code == 401
    assert "do not match" in response.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302


def test_sign_in_shows_the_queue_and_sets_a_safe_cookie(client, site, staff):
    ticket = new_request(site, subject="Menu overlaps the logo")
    response = login(client, "BOB@agency.test")
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/dashboard/").get_data(as_text=True)
    assert ticket.reference in page and "Menu overlaps the logo" in page
    assert "script-src 'self'" in client.get("/dashboard/").headers["Content-Security-Policy"]


def test_sign_in_never_redirects_off_site(client, staff):
    token = csrf_from(client.get("/dashboard/login").get_data(as_text=True))
    response = client.post(
        "/dashboard/login",
        data={
            "email": "bob@agency.test",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "https://evil.test/dashboard/",
        },
    )
    assert response.headers["Location"] == "/dashboard/"


def test_https_public_url_makes_the_cookie_secure(database_url, tmp_path):
    app = make_app(database_url, tmp_path, PUBLIC_URL="https://support.example.com")
    with app.app_context():
        seed_site()
        for member in db.session.scalars(sa.select(Staff)):
            member.set_password(PASSWORD)
        db.session.commit()
        client = app.test_client()
        assert login(client, "bob@agency.test").status_code == 303
        cookie = client.get_cookie("session")
        assert cookie is not None and cookie.secure and cookie.http_only
        db.session.remove()
        db.engine.dispose()


def test_post_without_csrf_token_is_refused(client, site, staff):
    ticket = new_request(site)
    no_token = client.post(
        "/dashboard/login", data={"email": "bob@agency.test", "password": PASSWORD}
    )
    assert no_token.status_code == 400
    login(client, "bob@agency.test")
    response = client.post(
        f"/dashboard/tickets/{ticket.reference}/status", data={"status": "closed"}
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    forged = client.post(
        f"/dashboard/tickets/{ticket.reference}/status",
        data={"status": "closed", "csrf_token": "forged"},
    )
    assert forged.status_code == 400
    db.session.refresh(ticket)
    assert ticket.status == "new"


def test_public_forms_and_webhooks_keep_working_without_a_session_token(client, site):
    # The hosted form has its own token; CSRFProtect must not stand in its way.
    path = f"/s/{site.site_key}"
    response = client.post(path, data=standard_fields(form_token=form_token(client, path)))
    assert response.status_code == 200 and "SUP-" in response.get_data(as_text=True)


def test_agents_cannot_reach_admin_pages_but_admins_can(app, site, staff):
    agent, admin = app.test_client(), app.test_client()
    login(agent, "bob@agency.test")
    login(admin, "alice@agency.test")
    for path in ("/dashboard/admin/", "/dashboard/admin/clients", "/dashboard/admin/staff"):
        assert agent.get(path).status_code == 403
        assert admin.get(path).status_code == 200
    assert "Admin" not in agent.get("/dashboard/").get_data(as_text=True).split("<main")[0]


def test_logout_revokes_every_copy_of_the_session(app, site, staff):
    first = app.test_client()
    login(first, "bob@agency.test")
    stolen = app.test_client()
    cookie = first.get_cookie("session")
    stolen.set_cookie("session", cookie.value)
    assert stolen.get("/dashboard/").status_code == 200
    page = first.get("/dashboard/").get_data(as_text=True)
    assert first.post("/dashboard/logout", data={"csrf_token": csrf_from(page)}).status_code == 303
    assert first.get("/dashboard/").status_code == 302
    assert stolen.get("/dashboard/").status_code == 302


def test_password_change_signs_out_existing_sessions(client, runner, site, staff):
    login(client, "bob@agency.test")
    assert client.get("/dashboard/").status_code == 200
    result = runner.invoke(
        args=["staff", "password", "bob@agency.test"], input="n3w-pass\nn3w-pass\n"
    )
    assert result.exit_code == 0, result.output
    assert client.get("/dashboard/").status_code == 302
    assert login(client, "bob@agency.test", "n3w-pass").status_code == 303


def test_login_is_rate_limited(database_url, tmp_path, smtp_server):
    app = make_app(database_url, tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    with app.app_context():
        codes = [login(client, "nobody@agency.test", "x").status_code for _ in range(4)]
        db.engine.dispose()
    assert codes == [401, 401, 401, 429]


# --- queue ------------------------------------------------------------------------------


def test_queue_puts_emergencies_first_and_marks_due_times(client, site, staff):
    late = new_request(site, subject="Late request")
    late.effective_due_at = utcnow() - timedelta(hours=2, minutes=5)
    soon = new_request(site, subject="Soon request", needed_by=utcnow().date())
    soon.effective_due_at = utcnow() + timedelta(minutes=30)
    db.session.commit()
    emergency = new_emergency(site)
    login(client, "bob@agency.test")
    page = client.get("/dashboard/").get_data(as_text=True)
    order = [page.index(t.reference + "<") for t in (emergency, late, soon)]
    assert order == sorted(order)
    assert "2 h overdue" in page and "breached" in page
    assert "in 29 min" in page or "in 30 min" in page
    assert "at risk" in page and "needed-by conflict" in page
    assert "not acknowledged" in page


def test_queue_filters_and_rejects_unknown_values(client, site, staff):
    standard = new_request(site, subject="Plain request")
    emergency = new_emergency(site)
    login(client, "bob@agency.test")
    page = client.get("/dashboard/?kind=emergency").get_data(as_text=True)
    assert emergency.reference + "<" in page and standard.reference + "<" not in page
    page = client.get(f"/dashboard/?client={site.client_id}&status=new").get_data(as_text=True)
    assert standard.reference + "<" in page
    assert client.get("/dashboard/?status=bogus").status_code == 400
    assert client.get("/dashboard/?kind=urgent").status_code == 400
    bad_cursor = client.get("/dashboard/?after=not-a-cursor")
    assert bad_cursor.status_code == 400
    assert "cursor" in bad_cursor.get_data(as_text=True)


def test_queue_pages_with_a_cursor(client, site, staff, monkeypatch):
    monkeypatch.setattr(dashboard, "PAGE_SIZE", 2)
    made = [new_request(site, subject=f"Request number {n}") for n in range(3)]
    login(client, "bob@agency.test")
    first = client.get("/dashboard/").get_data(as_text=True)
    link = re.search(r'class="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(link).get_data(as_text=True)
    shown = [t.reference for t in made if t.reference + "<" in first]
    assert len(shown) == 2
    assert [t.reference for t in made if t.reference + "<" in second] == [
        t.reference for t in made if t.reference not in shown
    ]


# --- escaping -----------------------------------------------------------------------------


def hostile_ticket(site, smtp_server):
    ticket = new_request(
        site,
        subject=XSS[0] + " subject",
        description="\n".join(XSS),
        name=XSS[1],
        email='x"><svg/onload=alert(9)>@example.com',
        urgency_note=XSS[2],
        needed_by=utcnow().date() + timedelta(days=3),
        page_meta={XSS[3]: XSS[4], "theme": XSS[5]},
    )
    smtp_server.wait_for(4)
    return ticket


def assert_escaped(text, payloads):
    for payload in payloads:
        assert payload not in text, f"unescaped: {payload}"
        assert str(escape(payload)) in text, f"missing escaped: {payload}"


def test_requester_text_is_escaped_in_the_dashboard(client, site, staff, smtp_server):
    ticket = hostile_ticket(site, smtp_server)
    login(client, "bob@agency.test")
    queue = client.get("/dashboard/").get_data(as_text=True)
    assert_escaped(queue, [XSS[0], XSS[1], 'x"><svg/onload=alert(9)>@example.com'])
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert_escaped(page, [*XSS, 'x"><svg/onload=alert(9)>@example.com'])
    assert "49" not in page.split("theme")[1][:200]  # no template evaluation of requester text


def test_requester_text_is_escaped_in_every_email(client, site, staff, smtp_server):
    ticket = hostile_ticket(site, smtp_server)
    login(client, "bob@agency.test")
    smtp_server.clear()
    post_action(client, ticket, "reply", body="We are looking at it.")
    post_action(client, ticket, "status", status="waiting_on_client")
    mails = smtp_server.wait_for(2)
    # Every e-mail the ticket caused so far: staff and requester intake mail, reply, status.
    rows = db.session.scalars(sa.select(Notification).where(Notification.channel == "email")).all()
    htmls = [row.body_html for row in rows] + [m.get_body(("html",)).get_content() for m in mails]
    for html in htmls:
        for payload in [*XSS, 'x"><svg/onload=alert(9)>@example.com']:
            assert payload not in html
    assert any(str(escape(XSS[1])) in html for html in htmls)
    assert len(rows) == 6


# --- ticket page and actions ----------------------------------------------------------------


def tiny_png():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(buffer, "PNG")
    return clean_screenshot(buffer.getvalue(), "shot.png", 10**6)


def test_ticket_page_shows_request_screenshot_and_timeline(app, client, site, staff, smtp_server):
    ticket = new_request(
        site, screenshots=[tiny_png()], page_meta={"cms": "WordPress 6.7"}, identity_verified=True
    )
    smtp_server.wait_for(4)
    row = ticket.notifications[0]
    row.status, row.last_error = "failed", "550 mailbox unavailable"
    db.session.commit()
    attachment_url = f"/dashboard/attachments/{ticket.attachments[0].id}"
    assert client.get(attachment_url).status_code == 302  # screenshots are staff-only
    login(client, "bob@agency.test")
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert "WordPress 6.7" in page and "identity verified" in page
    assert attachment_url in page
    assert "550 mailbox unavailable" in page and "Ticket created" in page
    image = client.get(attachment_url)
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert Image.open(io.BytesIO(image.data)).size == (4, 3)
    assert client.get("/dashboard/tickets/SUP-99999").status_code == 404


def test_reply_emails_the_requester_threaded_and_counts_as_response(
    client, site, staff, smtp_server
):
    ticket = new_request(site)
    smtp_server.wait_for(4)
    smtp_server.clear()
    login(client, "bob@agency.test")
    response = post_action(client, ticket, "reply", body="Fixed the SMTP settings.\nPlease try.")
    assert response.status_code == 303
    (mail,) = smtp_server.wait_for(1)
    assert mail["To"] == "jane@example.com"
    assert f"[{ticket.reference}]" in mail["Subject"]
    assert mail["In-Reply-To"] == messages.root_message_id(ticket.id)
    assert "Fixed the SMTP settings." in mail.get_body(("plain",)).get_content()
    db.session.refresh(ticket)
    assert ticket.first_responded_at is not None and ticket.status == "in_progress"
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert "Reply sent to jane@example.com" in page and "Fixed the SMTP settings." in page
    empty = post_action(client, ticket, "reply", body="   ")
    assert empty.status_code == 422 and "Write a reply" in empty.get_data(as_text=True)


def sla_site(site):
    plan = SlaPlan(
        name="Always",
        timezone="UTC",
        hours="mon-sun 00:00-24:00",
        first_response_minutes=240,
        resolution_minutes=960,
    )
    site.client.sla_plan = plan
    db.session.add(plan)
    db.session.commit()
    return site


def test_waiting_on_client_pauses_and_resumes_the_clock(client, site, staff, smtp_server):
    ticket = new_request(sla_site(site))
    smtp_server.wait_for(4)
    smtp_server.clear()
    due = ticket.resolution_due
    login(client, "bob@agency.test")
    assert post_action(client, ticket, "status", status="waiting_on_client").status_code == 303
    pause = db.session.scalar(sa.select(SlaPause).where(SlaPause.ticket_id == ticket.id))
    assert pause is not None and pause.ended_at is None
    # Pretend the client took two hours to answer.
    pause.started_at = pause.started_at - timedelta(hours=2)
    db.session.commit()
    assert post_action(client, ticket, "status", status="in_progress").status_code == 303
    db.session.refresh(pause)
    db.session.refresh(ticket)
    assert pause.ended_at is not None
    assert (
        timedelta(hours=1, minutes=59) < ticket.resolution_due - due < timedelta(hours=2, minutes=1)
    )
    mails = smtp_server.wait_for(2)
    assert "Waiting on you" in mails[0]["Subject"] and "In progress" in mails[1]["Subject"]
    assert all(m["References"] == messages.root_message_id(ticket.id) for m in mails)
    same = post_action(client, ticket, "status", status="in_progress")
    assert same.status_code == 422 and "already" in same.get_data(as_text=True)
    bogus = post_action(client, ticket, "status", status="done")
    assert bogus.status_code == 422


def test_queue_shows_a_paused_clock_not_a_breach_and_judges_each_target_apart(
    client, site, staff, smtp_server
):
    waiting = new_request(sla_site(site), subject="Waiting for the client's logo")
    responded = new_request(site, subject="First response was late")
    login(client, "bob@agency.test")
    assert post_action(client, waiting, "status", status="waiting_on_client").status_code == 303
    # Staff answered, asked for the logo; the wall clock passes the paused resolution time,
    # the SLA clock does not run.
    waiting.first_responded_at = utcnow()
    waiting.resolution_due = utcnow() - timedelta(hours=1)
    # The other missed its first response, then got one: its resolution is what counts now.
    responded.breached, responded.first_responded_at = ["first_response"], utcnow()
    responded.resolution_due = utcnow() + timedelta(hours=5)
    db.session.commit()
    page = client.get("/dashboard/").get_data(as_text=True)
    rows = {m.group(1): m.group(2) for m in re.finditer(r"(SUP-\d+)</a>(.*?)</tr>", page, re.S)}
    assert "clock paused" in rows[waiting.reference] and "breached" not in rows[waiting.reference]
    assert "Resolution in 4 h" in rows[responded.reference]
    assert "breached" not in rows[responded.reference]


def test_acknowledge_and_downgrade_an_emergency(client, site, staff, smtp_server):
    ticket = new_emergency(site)
    login(client, "bob@agency.test")
    assert post_action(client, ticket, "acknowledge").status_code == 303
    db.session.refresh(ticket)
    assert ticket.acknowledged_by.name == "Bob"
    again = post_action(client, ticket, "acknowledge")
    assert again.status_code == 422 and "already acknowledged by Bob" in again.get_data(
        as_text=True
    )
    no_reason = post_action(client, ticket, "triage", decision="downgrade", reason="")
    assert no_reason.status_code == 422 and "reason" in no_reason.get_data(as_text=True)
    smtp_server.clear()
    reason = "A typo on the About page is not an emergency."
    assert (
        post_action(client, ticket, "triage", decision="downgrade", reason=reason).status_code
        == 303
    )
    db.session.refresh(ticket)
    assert ticket.kind == "standard" and ticket.triage_decision == "downgrade"
    assert ticket.next_page_at is None and ticket.queue_rank == 2
    assert ticket.effective_due_at is not None
    (mail,) = [m for m in smtp_server.wait_for(1) if m["To"] == "jane@example.com"]
    assert reason in mail.get_body(("plain",)).get_content()
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert "Triage by Bob: downgrade" in page


def test_confirming_stops_paging(client, site, staff):
    ticket = new_emergency(site)
    login(client, "alice@agency.test")
    assert post_action(client, ticket, "triage", decision="confirm").status_code == 303
    db.session.refresh(ticket)
    assert ticket.triage_decision == "confirm" and ticket.kind == "emergency"
    assert ticket.acknowledged_by.name == "Alice" and ticket.next_page_at is None
    standard = new_request(site)
    refused = post_action(client, standard, "triage", decision="confirm")
    assert refused.status_code == 422 and "not an emergency" in refused.get_data(as_text=True)


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        ("", "Enter the time"),
        ("abc", "Enter the time"),
        ("0", "between 1 and"),
        ("5000", "between"),
    ],
)
def test_log_time_refuses_bad_minutes(client, site, staff, minutes, message):
    ticket = new_request(site)
    login(client, "bob@agency.test")
    response = post_action(client, ticket, "time", minutes=minutes)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(TimeEntry.id))) == 0


def test_log_time(client, site, staff):
    ticket = new_request(site)
    login(client, "bob@agency.test")
    response = post_action(client, ticket, "time", minutes="1h30", note="Restored", billable="y")
    assert response.status_code == 303
    entry = db.session.scalar(sa.select(TimeEntry))
    assert (entry.minutes, entry.billable, entry.note, entry.staff.name) == (
        90,
        True,
        "Restored",
        "Bob",
    )
    page = client.get(f"/dashboard/tickets/{ticket.reference}").get_data(as_text=True)
    assert "90 min logged by Bob (billable): Restored" in page
    assert "90 min billable" in page


def test_unknown_action_is_404(client, site, staff):
    ticket = new_request(site)
    login(client, "bob@agency.test")
    assert post_action(client, ticket, "explode").status_code == 404
    assert db.session.get(Ticket, ticket.id).status == "new"


# --- admin pages ----------------------------------------------------------------------------


def admin_post(client, page, path, **data):
    html = client.get(f"/dashboard/admin/{page}").get_data(as_text=True)
    return client.post(f"/dashboard/admin/{path}", data={"csrf_token": csrf_from(html), **data})


def test_admin_manages_clients_and_agents_cannot(app, site, staff):
    admin, agent = app.test_client(), app.test_client()
    login(admin, "alice@agency.test")
    login(agent, "bob@agency.test")
    fields = {"name": "Bistro", "emails": "chef@bistro.test, Boss@Bistro.test", "hourly_rate": "x"}
    bad = admin_post(admin, "clients", "clients/new", **fields)
    assert bad.status_code == 422 and "hourly rate must be a number" in bad.get_data(as_text=True)
    assert (
        admin_post(
            admin, "clients", "clients/new", **{**fields, "hourly_rate": "95.50"}
        ).status_code
        == 303
    )
    bistro = db.session.scalar(sa.select(Client).where(Client.name == "Bistro"))
    assert bistro.emails == ["chef@bistro.test", "boss@bistro.test"]
    assert str(bistro.hourly_rate) == "95.50"
    token = csrf_from(agent.get("/dashboard/").get_data(as_text=True))
    refused = agent.post(
        "/dashboard/admin/clients/new",
        data={"csrf_token": token, "name": "Sneaky", "emails": "a@b.test"},
    )
    assert refused.status_code == 403


def test_admin_sites_show_the_embed_and_validate_widget_settings(client, site, staff):
    login(client, "alice@agency.test")
    page = client.get("/dashboard/admin/sites").get_data(as_text=True)
    assert f'data-site-key="{site.site_key}"' in page.replace("&#34;", '"')
    bad = admin_post(client, "sites", f"sites/{site.id}", url=site.url, color="red;}")
    assert bad.status_code == 422 and "hex colour" in bad.get_data(as_text=True)
    ok = admin_post(
        client,
        "sites",
        f"sites/{site.id}",
        url="https://acme.test",
        origins="https://admin.acme.test/wp-admin/",
        label="Need help?",
        color="#0b5fff",
        enabled="y",
    )
    assert ok.status_code == 303
    db.session.refresh(site)
    assert site.allowed_origins == ["https://acme.test", "https://admin.acme.test"]
    assert (site.label, site.color, site.enabled) == ("Need help?", "#0b5fff", True)


def test_admin_creates_sla_plans_with_the_cli_checks(client, site, staff):
    login(client, "alice@agency.test")
    fields = {
        "name": "Silver",
        "timezone": "Europe/London",
        "hours": "mon-fri 9-5",
        "first_response": "4h",
        "resolution": "16h",
    }
    bad = admin_post(client, "sla", "sla/new", **fields)
    assert bad.status_code == 422 and "bad time" in bad.get_data(as_text=True).replace("&#39;", "'")
    bad_tz = admin_post(
        client,
        "sla",
        "sla/new",
        **{**fields, "hours": "mon-fri 09:00-17:00", "timezone": "Mars/Base"},
    )
    assert bad_tz.status_code == 422
    ok = admin_post(
        client, "sla", "sla/new", **{**fields, "hours": "mon-fri 09:00-17:00", "holidays": "GB"}
    )
    assert ok.status_code == 303
    plan = db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == "Silver"))
    assert (plan.first_response_minutes, plan.resolution_minutes, plan.holiday_country) == (
        240,
        960,
        "GB",
    )
    assert "Silver" in client.get("/dashboard/admin/sla").get_data(as_text=True)


def test_admin_sets_on_call_phone_and_role(client, site, staff):
    login(client, "alice@agency.test")
    bob, alice = staff["Bob"], staff["Alice"]
    bad = admin_post(client, "staff", f"staff/{bob.id}", phone="07700 900002", role="agent")
    assert bad.status_code == 422 and "E.164" in bad.get_data(as_text=True)
    taken = admin_post(client, "staff", f"staff/{bob.id}", phone=alice.phone, role="agent")
    assert taken.status_code == 422 and "already belongs to Alice" in taken.get_data(as_text=True)
    ok = admin_post(client, "staff", f"staff/{bob.id}", phone="+447700900099", role="admin")
    assert ok.status_code == 303
    db.session.refresh(bob)
    assert (bob.phone, bob.on_call, bob.role) == ("+447700900099", False, "admin")
    self_demote = admin_post(client, "staff", f"staff/{alice.id}", phone=alice.phone, role="agent")
    assert self_demote.status_code == 422


def test_site_key_rotation_keeps_old_embeds_working_for_the_grace_period(app, client, site, staff):
    old_key = site.site_key
    login(client, "alice@agency.test")
    page = client.get("/dashboard/admin/sites").get_data(as_text=True)
    response = client.post(
        f"/dashboard/admin/sites/{site.id}/rotate-key", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 303
    db.session.refresh(site)
    assert site.site_key != old_key
    listing = client.get("/dashboard/admin/sites").get_data(as_text=True)
    assert site.site_key in listing and "still works until" in listing
    assert client.get(f"/s/{site.site_key}").status_code == 200
    assert client.get(f"/s/{old_key}").status_code == 200  # old embeds keep working
    site.previous_key_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get(f"/s/{old_key}").status_code == 404  # until the grace period ends


@pytest.mark.parametrize("reference", ["SUP-\u00b2", "SUP-99999999999999999999", "SUP-", "12x"])
def test_odd_references_are_a_404_not_a_crash(client, site, staff, reference):
    login(client, "bob@agency.test")
    assert client.get(f"/dashboard/tickets/{reference}").status_code == 404


# --- reproducers that once answered 500 -------------------------------------------------------

HUGE = "99999999999"  # more than an INTEGER key holds (PostgreSQL refused it: a 500)


def test_huge_or_odd_numbers_in_filters_and_addresses_are_not_found(client, site, staff):
    login(client, "alice@agency.test")
    for query in (f"client={HUGE}", f"site={HUGE}", "client=\u00b2"):
        assert client.get(f"/dashboard/?{query}").status_code == 200
    assert client.get(f"/dashboard/attachments/{HUGE}").status_code == 404
    assert client.get(f"/dashboard/tickets/SUP-{HUGE}").status_code == 404
    page = client.get("/dashboard/admin/clients").get_data(as_text=True)
    token = {"csrf_token": csrf_from(page)}
    assert client.post(f"/dashboard/admin/clients/{HUGE}", data=token).status_code == 404
    assert client.post(f"/dashboard/admin/sites/{HUGE}/rotate-key", data=token).status_code == 404
    for client_id in (HUGE, "\u00b2"):
        data = {**token, "client_id": client_id, "url": "https://new.test", "name": "New"}
        response = client.post("/dashboard/admin/sites/new", data=data)
        assert response.status_code == 422
        assert "Choose the client" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "raw", ['[1e400, "2026-01-01T00:00:00+00:00", 1]', "[" * 5000, '[1, "2026-01-01T00:00:00", 1]']
)
def test_a_forged_queue_cursor_is_a_400(client, site, staff, raw):
    import base64

    login(client, "bob@agency.test")
    after = base64.urlsafe_b64encode(raw.encode()).decode()
    response = client.get(f"/dashboard/?after={after}")
    assert response.status_code == 400
    assert "cursor is not valid" in response.get_data(as_text=True)


@pytest.mark.parametrize("minutes", ["\u00b2", "9" * 5000])
def test_log_time_refuses_odd_digits(client, site, staff, minutes):
    ticket = new_request(site)
    login(client, "bob@agency.test")
    response = post_action(client, ticket, "time", minutes=minutes)
    assert response.status_code == 422 and "Enter the time" in response.get_data(as_text=True)


def test_billing_for_the_last_month_datetime_can_hold_is_refused(client, site, staff):
    login(client, "alice@agency.test")
    for path in ("/dashboard/reports/billing", "/dashboard/reports/billing.csv"):
        response = client.get(f"{path}?month=9999-12")
        assert response.status_code == 400
        assert "month must look like 2026-11" in response.get_data(as_text=True)


def test_a_malformed_site_address_is_refused_by_admin_and_cli(client, runner, site, staff):
    login(client, "alice@agency.test")
    token = csrf_from(client.get("/dashboard/admin/sites").get_data(as_text=True))
    data = {"csrf_token": token, "client_id": str(site.client.id), "url": "https://[x"}
    response = client.post("/dashboard/admin/sites/new", data={**data, "name": "Broken"})
    assert response.status_code == 422
    assert "is not an http(s) address" in response.get_data(as_text=True)
    result = runner.invoke(args=["site", "add", "--client", "Acme Shop", "--url", "https://[x"])
    assert result.exit_code != 0 and "is not an http(s) address" in result.output
