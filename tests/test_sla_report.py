"""The monthly SLA report: figures checked against a month computed by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from supportwidget.models import Client, Site, SiteHour, SlaPlan, TicketEvent, db

from test_dashboard import login, new_emergency, new_request, staff  # noqa: F401 - a fixture


def at(day, hour, minute=0, month=11):
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def standard(site, created, responded=None, resolved=None, first=240, resolution=960):
    """A standard request filed at `created` with its targets, answered and resolved when given."""
    ticket = new_request(site)
    ticket.created_at = created
    ticket.sla_plan_name = "Always"
    ticket.first_response_due = created + timedelta(minutes=first)
    ticket.resolution_due = created + timedelta(minutes=resolution)
    ticket.first_responded_at = responded
    if resolved is not None:
        ticket.status = "resolved"
        ticket.events.append(
            TicketEvent(
                kind="status", created_at=resolved, detail={"from": "new", "to": "resolved"}
            )
        )
    db.session.commit()
    return ticket


def emergency(site, created, acknowledged):
    ticket = new_emergency(site)
    ticket.created_at, ticket.acknowledged_at = created, acknowledged
    db.session.commit()
    return ticket


@pytest.fixture
def month(site):
    """November 2026 for Acme (SLA) and Bistro Uno (no SLA), computed by hand below."""
    plan = SlaPlan(
        name="Always", timezone="UTC", hours="mon-sun 00:00-24:00",
        first_response_minutes=240, resolution_minutes=960,
    )  # fmt: skip
    site.client.sla_plan = plan
    site.client.emails = ["owner@acme.example", "cto@acme.example"]
    bistro = Client(name="Bistro Uno", emails=["chef@bistro.example"])
    db.session.add_all(
        [plan, bistro, Site(client=bistro, name="bistro", url="https://bistro.example")]
    )
    db.session.commit()
    # First response: on time, late (360 min), on time (120 min), never (past due): 2 of 4.
    # Resolution: on time (600 min), late (1,440 min), unresolved past due, unresolved: 1 of 4.
    standard(site, at(2, 10), responded=at(2, 11), resolved=at(2, 20))
    standard(site, at(3, 10), responded=at(3, 16), resolved=at(4, 10))
    standard(site, at(4, 10), responded=at(4, 12))
    standard(site, at(5, 10))
    # Acknowledged after 6, 20 and 10 minutes: median 10.
    emergency(site, at(10, 3), at(10, 3, 6))
    emergency(site, at(11, 3), at(11, 3, 20))
    emergency(site, at(12, 3), at(12, 3, 10))
    # Outside the month: not counted.
    standard(site, at(31, 23, month=10), responded=at(31, 23, 30, month=10))
    standard(site, at(1, 0, month=12))
    new_request(bistro.sites[0]).created_at = at(20, 9)
    # Uptime: acme.test 1,437 good checks of 1,440 in November = 99.79 %; the hours either
    # side of the month, all failed, not counted. Acme's blog is not watched; Bistro's site
    # is watched but was never checked.
    db.session.add(Site(client=site.client, name="acme-blog", url="https://blog.acme.example"))
    site.client.sites[-1].watch_enabled = False
    for hour, checks, failures in [
        (at(2, 10), 720, 0), (at(30, 23), 720, 3),
        (at(31, 23, month=10), 60, 60), (at(1, 0, month=12), 60, 60),
    ]:  # fmt: skip
        db.session.add(SiteHour(site_id=site.id, hour=hour, checks=checks, failures=failures))
    db.session.commit()


EXPECTED = [
    ["client", "tickets", "first_response_on_time_pct", "resolution_on_time_pct",
     "median_first_response_minutes", "median_resolution_minutes", "emergencies",
     "median_acknowledge_minutes", "site_uptime_pct"],
    ["Acme Shop", "7", "50", "25", "120", "1020", "3", "10",
     "acme-blog=not watched; acme.test=99.79"],
    ["Bistro Uno", "1", "", "", "", "", "0", "", "bistro=no checks"],
]  # fmt: skip


@pytest.mark.usefixtures("staff", "month")
def test_report_page_and_csv_show_hand_computed_figures(client):
    login(client, "bob@agency.test")
    response = client.get("/dashboard/reports/sla.csv?month=2026-11")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert list(csv.reader(io.StringIO(response.get_data(as_text=True)))) == EXPECTED
    page = client.get("/dashboard/reports/sla?month=2026-11").get_data(as_text=True)
    assert "50.0% (2/4)" in page and "25.0% (1/4)" in page
    assert "<svg" in page and "First responses on time: 50.0%" in page
    assert "acme.test: 99.79%" in page and "acme-blog: not watched" in page
    assert "bistro: no checks" in page
    acme = db.session.scalar(sa.select(Client).where(Client.name == "Acme Shop"))
    one = client.get(f"/dashboard/reports/sla?month=2026-11&client={acme.id}").get_data(
        as_text=True
    )
    assert "Acme Shop" in one and "Bistro Uno</td>" not in one
    assert client.get("/dashboard/reports/sla?month=2026-13").status_code == 400


@pytest.mark.usefixtures("month")
def test_report_command_prints_and_sends_to_the_clients_contacts(runner, smtp_server):
    result = runner.invoke(args=["report", "sla", "--month", "2026-11", "--client", "Acme Shop"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows == EXPECTED[:2]
    smtp_server.clear()
    result = runner.invoke(
        args=["report", "sla", "--month", "2026-11", "--client", "Acme Shop", "--send"]
    )
    assert result.exit_code == 0 and "Queued 2 e-mail(s)" in result.output
    mails = smtp_server.wait_for(2)
    assert {m["To"] for m in mails} == {"owner@acme.example", "cto@acme.example"}
    body = mails[0].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "First responses on time: 50.0% (2 of 4)" in body
    assert "Median time to acknowledge an emergency: 10.0 min" in body
    assert "Uptime of your sites:\n  acme-blog: not watched\n  acme.test: 99.79%\n" in body
    assert "acme.test: 99.79%" in mails[0].get_body(("html",)).get_content()
    assert "<svg" in mails[0].get_body(("html",)).get_content()
