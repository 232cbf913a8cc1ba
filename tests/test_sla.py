"""SLA scheduling as clients and staff see it: due times, contracts, the FCFS queue, needed-by."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from supportwidget.models import (
    Client,
    Notification,
    OpenTicketCount,
    Site,
    SlaPause,
    SlaPlan,
    Staff,
    Ticket,
    TicketEvent,
    db,
)
from supportwidget.platform import tokens
from supportwidget.platform.database import MIGRATIONS
from supportwidget.sla import schedules as sla
from supportwidget.sla.workqueue import Filters, work_queue
from supportwidget.tickets import filing as tickets

from conftest import form_token, standard_fields


def _migration(revision: str):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_revision(revision)


# The migration that adds the open-ticket count and its triggers.
COUNT_MIGRATION = _migration("a3f17c0b9d42")

LONDON = ZoneInfo("Europe/London")
GOLD = [
    "sla", "add", "Gold", "--timezone", "Europe/London", "--hours", "mon-fri 09:00-17:30",
    "--holidays", "GB", "--first-response", "4h", "--resolution", "16h",
]  # fmt: skip


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def invoke(runner, *args: str):
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


@pytest.fixture
def gold(runner, site):
    """Give the seeded client an open-ended Gold contract through the CLI."""
    assert invoke(runner, *GOLD)[0] == 0
    code, output = invoke(runner, "client", "contract", "Acme Shop", "--sla", "Gold")
    assert code == 0, output
    db.session.expire_all()
    return db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == "Gold"))


def submit(client, site, **fields):
    path = f"/s/{site.site_key}"
    data = standard_fields(form_token=form_token(client, path), **fields)
    response = client.post(path, data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    reference = re.search(r"SUP-\d+", page).group(0)
    return tickets.find_by_reference(reference), " ".join(page.split())


def filed_at(site, now: datetime, needed_by: date | None = None) -> Ticket:
    """File a request through the workflow with the clock at `now`."""
    request = tickets.Request("Menu broken", "The menu is gone.", "Jo", "jo@example.com", needed_by)
    ticket = tickets.new_ticket(site, request, kind="standard")
    ticket.created_at = now
    db.session.flush()
    sla.schedule_new(ticket, now)
    db.session.commit()
    return ticket


def test_hosted_form_shows_and_mails_the_sla_due_times(client, site, gold, smtp_server):
    ticket, page = submit(client, site)
    assert ticket.sla_plan_name == "Gold"
    calendar = sla.calendar_for(gold)
    assert calendar.between(ticket.created_at, ticket.first_response_due) == timedelta(hours=4)
    assert calendar.between(ticket.created_at, ticket.resolution_due) == timedelta(hours=16)
    due = sla.format_due(ticket.first_response_due, "Europe/London")
    promise = f"First response by {due} — your Gold plan"
    assert promise in page
    assert "in the queue" not in page
    confirmation = next(m for m in smtp_server.wait_for(4) if m["To"] == "jane@example.com")
    assert promise in " ".join(confirmation.get_body(("plain",)).get_content().split())


def test_friday_afternoon_request_gets_its_first_response_on_monday(client, site, gold):
    ticket, _ = submit(client, site)
    # The clock cannot be set for a real submission: re-run the scheduling as of Friday 16:00.
    ticket.created_at = london(2026, 11, 27, 16, 0)
    sla.schedule_new(ticket, ticket.created_at)
    db.session.commit()
    assert ticket.first_response_due == london(2026, 11, 30, 11, 30)
    assert ticket.resolution_due == london(2026, 12, 1, 15, 0)
    status = client.get(f"/t/{tokens.status_token(ticket.id)}").get_data(as_text=True)
    assert "First response by Mon 30 Nov, 11:30 — your Gold plan" in status
    assert "Tue 1 Dec, 15:00" in status


@pytest.mark.parametrize(
    ("now", "first_response"),
    [
        # Clocks go back on Sunday 25 Oct 2026: Monday 11:30 is GMT, not BST.
        (london(2026, 10, 23, 16, 0), datetime(2026, 10, 26, 11, 30, tzinfo=UTC)),
        # Monday 25 May 2026 is the Spring bank holiday.
        (london(2026, 5, 22, 16, 0), london(2026, 5, 26, 11, 30)),
        # After hours the clock starts at the next opening.
        (london(2026, 11, 30, 18, 45), london(2026, 12, 1, 13, 0)),
        (london(2026, 11, 29, 3, 0), london(2026, 11, 30, 13, 0)),
    ],
)
def test_due_times_follow_business_hours(site, gold, now, first_response):
    ticket = filed_at(site, now)
    assert ticket.first_response_due == first_response
    assert ticket.effective_due_at == first_response


def test_contract_dates_decide_between_sla_and_queue(runner, site, gold):
    code, output = invoke(
        runner, "client", "contract", "Acme Shop", "--sla", "Gold",
        "--sla-start", "2027-07-01", "--sla-end", "2027-12-31",
    )  # fmt: skip
    assert code == 0, output
    before = filed_at(site, london(2027, 6, 30, 16, 0))
    # 00:30 on 1 July in London is still 30 June in UTC: the plan's own date counts.
    first_day = filed_at(site, london(2027, 7, 1, 0, 30))
    last_day = filed_at(site, london(2027, 12, 31, 16, 0))
    after = filed_at(site, london(2028, 1, 3, 10, 0))
    assert [t.sla_plan_name for t in (before, first_day, last_day, after)] == [
        None, "Gold", "Gold", None,
    ]  # fmt: skip
    assert before.first_response_due is None and before.resolution_due is None
    assert after.effective_due_at is not None  # the default target still queues it
    # A client is told their place in the staff's own queue (issue 15: the downgrade e-mail
    # said "number 1" while staff had the ticket 6th): Gold tickets due sooner come first.
    order = [t.id for t in work_queue(Filters(), limit=100)[0]]
    assert sla.queue_position(before) == order.index(before.id) + 1 == 2
    assert sla.queue_position(first_day) is None
    assert sla.queue_position(after) == order.index(after.id) + 1 == 4
    assert "you are number 4 in the queue" in sla.expectation(after)


def test_contract_outside_its_dates_puts_the_real_form_in_the_queue(client, runner, site, gold):
    today = date.today()
    later = (today + timedelta(days=2)).isoformat()
    invoke(runner, "client", "contract", "Acme Shop", "--sla", "Gold", "--sla-start", later)
    _, page = submit(client, site)
    assert "you are number 1 in the queue" in page and "Gold" not in page
    earlier = (today - timedelta(days=2)).isoformat()
    invoke(runner, "client", "contract", "Acme Shop", "--sla", "Gold", "--sla-end", earlier)
    _, page = submit(client, site)
    assert "you are number 2 in the queue" in page


def test_queue_positions_count_open_requests_without_sla(client, site):
    positions = []
    for n in range(3):
        ticket, page = submit(client, site, subject=f"Request {n}")
        positions.append(re.search(r"you are number (\d+) in the queue", page).group(1))
    assert positions == ["1", "2", "3"]
    first = db.session.scalars(sa.select(Ticket).order_by(Ticket.id)).first()
    first.status = "resolved"
    first.update_queue_rank()
    db.session.commit()
    status = client.get(f"/t/{tokens.status_token(ticket.id)}").get_data(as_text=True)
    assert "you are number 2 in the queue" in status
    assert "in the queue" not in sla.expectation(first)


def open_count() -> tuple[int, int]:
    """Return the open-ticket count the database keeps and the count of open rows."""
    kept = db.session.scalar(sa.select(sa.func.sum(OpenTicketCount.open_tickets)))
    real = db.session.scalar(sa.select(sa.func.count(Ticket.id)).where(Ticket.queue_rank < 9))
    return kept, real


def test_queue_position_stays_right_through_every_kind_of_write(client, site):
    # Positions are the open count less the tickets behind; the count is kept by the
    # database, so writes outside the ORM (a bulk close, a delete) must keep it too.
    filed = [submit(client, site, subject=f"Request {n}")[0] for n in range(6)]
    db.session.execute(
        sa.update(Ticket).where(Ticket.id.in_([filed[0].id, filed[2].id])).values(queue_rank=9)
    )
    for child in (TicketEvent, Notification):
        db.session.execute(sa.delete(child).where(child.ticket_id == filed[1].id))
    db.session.execute(sa.delete(Ticket).where(Ticket.id == filed[1].id))
    reopened = db.session.get(Ticket, filed[2].id)
    reopened.queue_rank = 2  # reopened: back in the queue at its old due time
    db.session.commit()
    assert open_count() == (4, 4)
    _, page = submit(client, site, subject="Newest")
    assert "you are number 5 in the queue" in page
    order = [t.id for t in work_queue(Filters(), limit=100)[0]]
    for ticket_id in order:
        ticket = db.session.get(Ticket, ticket_id)
        assert sla.queue_position(ticket) == order.index(ticket_id) + 1
    assert order.index(reopened.id) == 0


def test_open_count_starts_from_the_tickets_already_there(app, client, site):
    submit(client, site)
    submit(client, site)
    downgrade(directory=MIGRATIONS, revision=COUNT_MIGRATION.down_revision)
    filed_at(site, datetime.now(UTC))  # no position asked: the count is not there yet
    upgrade(directory=MIGRATIONS)
    db.session.expire_all()
    assert open_count() == (3, 3)
    assert "you are number 4 in the queue" in submit(client, site)[1]


def test_needed_by_before_resolution_is_flagged_and_staff_warned(client, site, gold, smtp_server):
    ticket, page = submit(client, site, needed_by=date.today().isoformat())
    assert ticket.needed_by == date.today()
    assert ticket.needed_by_conflict
    assert "we will do our best to accommodate that date" in page
    staff_mail = next(m for m in smtp_server.wait_for(4) if m["To"] == "alice@agency.test")
    assert (
        "needed-by date is earlier than the SLA allows"
        in staff_mail.get_body(("plain",)).get_content()
    )


def test_needed_by_after_resolution_is_not_flagged(site, gold):
    ticket = filed_at(site, london(2026, 11, 27, 16, 0), needed_by=date(2026, 12, 4))
    assert not ticket.needed_by_conflict
    assert "do our best" not in sla.expectation(ticket)


def test_needed_by_without_sla_is_always_flagged(site):
    ticket = filed_at(site, london(2026, 11, 27, 16, 0), needed_by=date(2027, 3, 1))
    assert ticket.needed_by_conflict
    assert "Mon 1 Mar 2027: we will do our best" in sla.expectation(ticket)


def test_pause_and_resume_add_exactly_the_paused_business_time(site, gold):
    ticket = filed_at(site, london(2026, 11, 27, 16, 0))
    before = ticket.resolution_due
    ticket.status = "waiting_on_client"
    sla.status_changed(ticket, london(2026, 11, 30, 10, 0))
    db.session.commit()
    # Mon 10:00 to Tue 10:00 is 8h30 of business time (a whole working day).
    ticket.status = "in_progress"
    sla.status_changed(ticket, london(2026, 12, 1, 10, 0))
    db.session.commit()
    calendar = sla.calendar_for(gold)
    assert calendar.between(before, ticket.resolution_due) == timedelta(hours=8, minutes=30)
    assert ticket.resolution_due == london(2026, 12, 2, 15, 0)
    pauses = db.session.scalars(sa.select(SlaPause).where(SlaPause.ticket_id == ticket.id)).all()
    assert [(p.started_at, p.ended_at) for p in pauses] == [
        (london(2026, 11, 30, 10, 0), london(2026, 12, 1, 10, 0))
    ]
    # Resuming again changes nothing: there is no running pause.
    assert sla.resume(ticket, london(2026, 12, 1, 12, 0)) == timedelta(0)
    assert ticket.resolution_due == london(2026, 12, 2, 15, 0)


def test_pause_over_a_weekend_adds_only_business_time(site, gold):
    ticket = filed_at(site, london(2026, 11, 27, 9, 0))
    before = ticket.resolution_due
    sla.pause(ticket, london(2026, 11, 27, 17, 0))
    paused = sla.resume(ticket, london(2026, 11, 30, 9, 15))
    assert paused == timedelta(minutes=45)
    assert sla.calendar_for(gold).between(before, ticket.resolution_due) == paused
    assert (before, ticket.resolution_due) == (
        london(2026, 11, 30, 16, 30),
        london(2026, 11, 30, 17, 15),
    )


def test_first_response_switches_the_queue_to_the_resolution_target(site, gold):
    ticket = filed_at(site, london(2026, 11, 27, 16, 0))
    sla.responded(ticket, london(2026, 11, 30, 9, 30))
    assert ticket.effective_due_at == ticket.resolution_due


# --- command line -------------------------------------------------------------------------


def test_sla_add_stores_a_plan(runner, app):
    code, output = invoke(
        runner, "sla", "add", "Silver", "--timezone", "Europe/Berlin",
        "--hours", "mon-thu 09:00-17:30, fri 09:00-16:00", "--holidays", "DE-BY",
        "--holiday", "2026-12-24", "--first-response", "1h30m", "--resolution", "24h",
        "--emergency-response", "30m",
    )  # fmt: skip
    assert code == 0, output
    assert "Silver" in output
    plan = db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == "Silver"))
    assert (plan.first_response_minutes, plan.resolution_minutes) == (90, 24 * 60)
    assert plan.emergency_response_minutes == 30
    assert plan.extra_holidays == ["2026-12-24"]
    calendar = sla.calendar_for(plan)
    assert calendar.is_holiday(date(2026, 12, 24))
    assert calendar.is_holiday(date(2026, 1, 6))  # Epiphany, a Bavarian holiday
    assert not calendar.is_open(datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Europe/Berlin")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"--hours": "weekdays 9-5"}, "unknown day 'weekdays'"),
        ({"--hours": "mon-fri 17:30-09:00"}, "must end after it starts"),
        ({"--first-response": "4 hours"}, "bad duration '4 hours'"),
        ({"--resolution": "0h"}, "must be more than zero"),
        ({"--holidays": "XX"}, "unknown holiday country 'XX'"),
        ({"--holiday": "25/12/2026"}, "--holiday must be a date like 2026-12-31"),
    ],
)
def test_sla_add_explains_bad_input(runner, app, change, message):
    options = dict(zip(GOLD[3::2], GOLD[4::2], strict=True)) | change
    args = ["sla", "add", "Bad", *[part for pair in options.items() for part in pair]]
    code, output = invoke(runner, *args)
    assert code != 0
    assert message in output
    assert db.session.scalar(sa.select(SlaPlan).where(SlaPlan.name == "Bad")) is None


def test_sla_add_refuses_a_duplicate_name(runner, app):
    assert invoke(runner, *GOLD)[0] == 0
    code, output = invoke(runner, *GOLD)
    assert code != 0 and "An SLA plan named 'Gold' already exists." in output


def test_client_add_with_sla_contract(runner, app):
    invoke(runner, *GOLD)
    code, output = invoke(
        runner, "client", "add", "Bakery", "--email", "Owner@Bakery.test", "--sla", "Gold",
        "--sla-start", "2026-01-01", "--sla-end", "2026-12-31",
    )  # fmt: skip
    assert code == 0, output
    bakery = db.session.scalar(sa.select(Client).where(Client.name == "Bakery"))
    assert bakery.emails == ["owner@bakery.test"]
    assert bakery.active_plan(date(2026, 6, 1)).name == "Gold"
    assert bakery.active_plan(date(2027, 1, 1)) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sla", "Platinum"], "No SLA plan named 'Platinum'. Create it with `sla add`."),
        (["--sla", "Gold", "--sla-start", "next week"], "--sla-start must be a date like"),
        (["--sla", "Gold", "--sla-end", "2026-13-01"], "--sla-end must be a date like"),
        (
            ["--sla", "Gold", "--sla-start", "2026-06-01", "--sla-end", "2026-05-31"],
            "--sla-end is before --sla-start.",
        ),
    ],
)
def test_client_add_explains_bad_contracts(runner, app, args, message):
    invoke(runner, *GOLD)
    code, output = invoke(runner, "client", "add", "Bakery", "--email", "o@b.test", *args)
    assert code != 0
    assert message in output
    assert db.session.scalar(sa.select(Client).where(Client.name == "Bakery")) is None


def test_client_contract_changes_and_removes_the_sla(runner, site):
    invoke(runner, *GOLD)
    code, output = invoke(
        runner, "client", "contract", "Acme Shop", "--sla", "Gold", "--sla-end", "2027-01-31"
    )
    assert (code, output.strip()) == (0, "Client 'Acme Shop': SLA Gold.")
    db.session.expire_all()
    acme = db.session.scalar(sa.select(Client).where(Client.name == "Acme Shop"))
    assert acme.active_plan(date(2027, 1, 31)).name == "Gold"
    assert acme.active_plan(date(2027, 2, 1)) is None
    code, output = invoke(runner, "client", "contract", "Acme Shop")
    assert (code, output.strip()) == (0, "Client 'Acme Shop': SLA none.")
    db.session.expire_all()
    assert db.session.get(Client, acme.id).sla_plan is None


def test_client_contract_needs_a_known_client(runner, app):
    code, output = invoke(runner, "client", "contract", "Nobody", "--sla", "Gold")
    assert code != 0
    assert "No client named 'Nobody'. Create it with `client add`." in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["client", "add", "Bakery", "--email", "not-an-address"], "valid contact e-mail"),
        (
            ["client", "add", "Bakery", "--email", "o@b.test", "--hourly-rate", "NaN"],
            "--hourly-rate must be a positive amount",
        ),
        (
            ["client", "add", "Bakery", "--email", "o@b.test", "--hourly-rate", "ten"],
            "--hourly-rate must be a number like 120",
        ),
        (
            ["staff", "add", "--name", "Eve", "--email", "eve@agency.test", "--phone", "0770"],
            "E.164",
        ),
        (["client", "add", "N" * 121, "--email", "o@b.test"], "name of at most 120 characters"),
        (["staff", "add", "--name", "Eve", "--email", "not-an-email"], "not a valid e-mail"),
        (["staff", "add", "--name", "E" * 121, "--email", "eve@agency.test"], "at most 120"),
    ],
)
def test_cli_applies_the_same_account_rules_as_the_admin_pages(runner, app, args, message):
    code, output = invoke(runner, *args)
    assert code != 0 and message in output
    assert db.session.scalar(sa.select(sa.func.count(Client.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Staff.id))) == 0


def test_site_add_refuses_an_overlong_name_as_the_admin_page_does(runner, site):
    args = ["site", "add", "--client", "Acme Shop", "--url", "https://b.test", "--name", "S" * 201]
    code, output = invoke(runner, *args)
    assert code != 0 and "at most 200 characters" in output
    assert db.session.scalar(sa.select(sa.func.count(Site.id))) == 1
