"""Emergency billing: who is charged, for which minutes, at which rate, rounded how."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from supportwidget.models import Client, Site, SlaPlan, Staff, db
from supportwidget.staff.billing import BillingError, amount_for, month_bounds
from supportwidget.tickets import actions as updates

from test_dashboard import login, new_emergency, new_request, post_action

MARCH = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
HEADER = [
    "client",
    "reference",
    "filed_at",
    "category",
    "minutes",
    "hourly_rate",
    "currency",
    "amount",
]


@pytest.fixture
def bob(site):
    member = db.session.scalar(sa.select(Staff).where(Staff.email == "bob@agency.test"))
    member.set_password("correct horse battery")
    site.client.hourly_rate = Decimal("150.00")
    db.session.commit()
    return member


def work(ticket, member, minutes, billable=True, at=MARCH):
    """Log time through the workflow, then date it."""
    entry = updates.log_time(ticket, member, minutes, None, billable)
    entry.created_at = at
    db.session.commit()
    return entry


def other_site(name, rate, plan=None):
    client = Client(name=name, emails=[f"boss@{name.lower()}.test"], hourly_rate=rate)
    client.sla_plan = plan
    site = Site(client=client, name=f"{name.lower()}.test", url=f"https://{name.lower()}.test")
    db.session.add_all([client, site])
    db.session.commit()
    return site


def csv_rows(client, month):
    response = client.get(f"/dashboard/reports/billing.csv?month={month}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_only_confirmed_emergencies_without_sla_are_charged(client, site, bob):
    confirmed = new_emergency(site)
    updates.triage(confirmed, bob, "confirm", None)
    work(confirmed, bob, 90)
    work(confirmed, bob, 25, billable=False)
    work(confirmed, bob, 20)
    second = new_emergency(site, subject="Site hacked again")
    updates.triage(second, bob, "confirm", None)
    work(second, bob, 7)
    work(second, bob, 30, at=datetime(2026, 4, 1, 0, 0, tzinfo=UTC))  # next month
    work(second, bob, 3, at=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))  # still March
    downgraded = new_emergency(site, subject="Typo on a page")
    updates.triage(downgraded, bob, "downgrade", "Not an emergency: a typo.")
    work(downgraded, bob, 60)
    untriaged = new_emergency(site, subject="Not yet looked at")
    work(untriaged, bob, 60)
    work(new_request(site), bob, 60)

    gold = SlaPlan(
        name="Gold",
        timezone="UTC",
        hours="mon-fri 09:00-17:00",
        first_response_minutes=60,
        resolution_minutes=480,
    )
    covered = other_site("Covered", Decimal("200"), plan=gold)
    under_sla = new_emergency(covered)
    updates.triage(under_sla, bob, "confirm", None)
    work(under_sla, bob, 60)
    # The SLA at the time of the emergency decides: ending the contract later changes nothing.
    covered.client.sla_plan = None
    db.session.commit()

    login(client, "bob@agency.test")
    rows = csv_rows(client, "2026-03")
    filed = [t.created_at.isoformat(timespec="minutes") for t in (confirmed, second)]
    assert rows == [
        HEADER,
        ["Acme Shop", confirmed.reference, filed[0], "offline", "110", "150.00", "EUR", "275.00"],
        ["Acme Shop", second.reference, filed[1], "offline", "10", "150.00", "EUR", "25.00"],
    ]
    page = client.get("/dashboard/reports/billing?month=2026-03").get_data(as_text=True)
    assert "Acme Shop" in page and "€300.00" in page and "Covered" not in page
    # Time logged as billable where it will not be billed is pointed out, with the reason.
    assert f"{downgraded.reference}</a>: 60 min logged as billable" in page
    assert "is not a confirmed emergency" in page and "covered by the Gold SLA" in page
    assert csv_rows(client, "2026-04")[1][4:] == ["30", "150.00", "EUR", "75.00"]
    assert csv_rows(client, "2026-02") == [HEADER]


def test_amounts_are_rounded_to_cents_per_client(client, site, bob):
    cheap = other_site("Pennies", Decimal("0.30"))
    odd = other_site("Odd", Decimal("95.50"))
    for target, minutes in ((cheap, [1]), (odd, [7, 7, 7])):
        ticket = new_emergency(target)
        updates.triage(ticket, bob, "confirm", None)
        for m in minutes:
            work(ticket, bob, m)
    login(client, "bob@agency.test")
    rows = {row[0]: row for row in csv_rows(client, "2026-03")[1:]}
    assert rows["Pennies"][4:] == ["1", "0.30", "EUR", "0.01"]  # 0.005 rounds half up
    # 21 min at 95.50/h = 33.425: rounded once on the ticket, not per entry (3 x 11.14 = 33.42).
    assert rows["Odd"][4:] == ["21", "95.50", "EUR", "33.43"]


def test_a_client_without_a_rate_is_listed_for_follow_up(client, site, bob):
    norate = other_site("Norate", None)
    ticket = new_emergency(norate)
    updates.triage(ticket, bob, "confirm", None)
    work(ticket, bob, 45)
    login(client, "bob@agency.test")
    assert csv_rows(client, "2026-03")[1][4:] == ["45", "", "EUR", "0.00"]
    assert "no rate set" in client.get("/dashboard/reports/billing?month=2026-03").get_data(
        as_text=True
    )


def test_formula_like_client_names_are_defused_in_csv(client, site, bob):
    evil = other_site("=HYPERLINK(1)", Decimal("10"))
    ticket = new_emergency(evil)
    updates.triage(ticket, bob, "confirm", None)
    work(ticket, bob, 60)
    login(client, "bob@agency.test")
    assert csv_rows(client, "2026-03")[1][0] == "'=HYPERLINK(1)"


FORMULAS = [
    "Acme;=cmd|' /C calc'!A0",
    "Acme,=1+2",
    "Acme; @SUM(A1)",
    "+44 Ltd",
    "-2+3 Ltd",
    "@home",
    "\tTabbed",
    "Plain; name, with separators",
]


def test_every_csv_cell_is_quoted_and_no_cell_starts_a_formula(client, site, bob):
    for number, name in enumerate(FORMULAS):
        ticket = new_emergency(other_site(name, Decimal("10")), subject=f"Down {number}")
        updates.triage(ticket, bob, "confirm", None)
        work(ticket, bob, 60)
    login(client, "bob@agency.test")
    text = client.get("/dashboard/reports/billing.csv?month=2026-03").get_data(as_text=True)
    lines = text.splitlines()
    assert len(lines) == len(FORMULAS) + 1
    assert all(line.startswith('"') and line.endswith('"') for line in lines)
    # A spreadsheet may split on ',' or, in many locales, on ';': neither may start a formula.
    for delimiter in (",", ";"):
        cells = [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]
        assert not [c for c in cells if c.lstrip(" ")[:1] in ("=", "+", "-", "@", "\t", "\r")]
    names = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert "Acme;'=cmd|' /C calc'!A0" in names and "Plain; name, with separators" in names
    assert "'+44 Ltd" in names and "'\tTabbed" in names


@pytest.mark.parametrize(
    "month",
    # A trailing line break once passed a $-anchored check and broke the download's header: 500.
    ["2026-13", "2026-3", "march", "2026-00", "1999-12", "2026-11%0A", "%0A2026-11", "2026-11 "],
)
def test_bad_month_is_a_clear_400(client, bob, month):
    login(client, "bob@agency.test")
    for path in ("/dashboard/reports/billing.csv", "/dashboard/reports/billing"):
        response = client.get(f"{path}?month={month}")
        assert response.status_code == 400
        assert "month must look like 2026-11" in response.get_data(as_text=True)


def test_logging_billable_time_that_will_not_be_billed_warns(client, site, bob):
    ticket = new_request(site)
    login(client, "bob@agency.test")
    response = post_action(client, ticket, "time", minutes="30", billable="y")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "warning: it will not be billed" in page and "only emergencies are billed" in page
    emergency = new_emergency(site)
    response = post_action(client, emergency, "time", minutes="30", billable="y")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "not a confirmed emergency" in page
    updates.triage(emergency, bob, "confirm", None)
    response = post_action(client, emergency, "time", minutes="15", billable="y")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "will not be billed" not in page


def test_the_currency_follows_the_configuration(app, client, site, bob):
    app.config["CURRENCY"] = "GBP"
    ticket = new_emergency(site)
    updates.triage(ticket, bob, "confirm", None)
    work(ticket, bob, 60)
    login(client, "bob@agency.test")
    assert csv_rows(client, "2026-03")[1][6:] == ["GBP", "150.00"]
    page = client.get("/dashboard/reports/billing?month=2026-03").get_data(as_text=True)
    assert "£150.00" in page


def test_billing_needs_sign_in(client, bob):
    assert client.get("/dashboard/reports/billing.csv?month=2026-03").status_code == 302


def test_month_bounds_and_amounts():
    start, end = month_bounds("2026-12")
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    )
    # April in London starts at 23:00 UTC on 31 March (summer time): work logged then is April's.
    start, _ = month_bounds("2026-04", "Europe/London")
    assert start.astimezone(UTC) == datetime(2026, 3, 31, 23, tzinfo=UTC)
    with pytest.raises(BillingError):
        month_bounds("2026/03")
    assert amount_for(60, Decimal("120")) == Decimal("120.00")
    assert amount_for(1, None) == Decimal("0.00")
