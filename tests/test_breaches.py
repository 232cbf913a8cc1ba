"""Breach warnings: staff hear once per target before an SLA is missed, in business hours."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from test_sla import GOLD, filed_at, invoke, london

from supportwidget.models import TicketEvent, db, utcnow
from supportwidget.sla import deadlines as breaches
from supportwidget.sla import schedules as sla
from supportwidget.tickets import filing as tickets
from supportwidget.worker import run_periodic

STAFF = {"alice@agency.test", "bob@agency.test", "inbox@agency.test"}
ALWAYS_OPEN = [
    "sla", "add", "Always", "--timezone", "UTC", "--hours", "mon-sun 00:00-24:00",
    "--first-response", "4h", "--resolution", "16h", "--emergency-response", "30m",
]  # fmt: skip


@pytest.fixture
def plan(runner, site):
    """Give the seeded client a Gold contract (London, mon-fri 09:00-17:30, 4h/16h)."""
    invoke(runner, *GOLD)
    invoke(runner, *ALWAYS_OPEN)
    invoke(runner, "client", "contract", "Acme Shop", "--sla", "Gold")
    db.session.expire_all()
    return site


def warnings_sent(smtp_server, count: int):
    mails = smtp_server.wait_for(count)
    assert len(mails) == count
    return mails


def test_staff_are_warned_once_then_the_breach_is_marked(plan, smtp_server):
    ticket = filed_at(plan, london(2026, 11, 27, 16, 0))  # first response due Mon 11:30
    assert breaches.warn_breaches(london(2026, 11, 30, 10, 0)) == 0
    assert breaches.warn_breaches(london(2026, 11, 30, 10, 31)) == 3
    mails = warnings_sent(smtp_server, 3)
    assert {m["To"] for m in mails} == STAFF
    subject = mails[0]["Subject"]
    assert subject.startswith(f"[{ticket.reference}] SLA warning: first response due Mon 30 Nov")
    body = mails[0].get_body(("plain",)).get_content()
    assert "59m of business time left" in body
    assert f"/dashboard/tickets/{ticket.reference}" in body

    assert breaches.warn_breaches(london(2026, 11, 30, 11, 0)) == 0
    assert breaches.warn_breaches(london(2026, 11, 30, 11, 31)) == 0
    db.session.refresh(ticket)
    assert ticket.breach_warned == ["first_response"]
    assert ticket.breached == ["first_response"]
    kinds = db.session.scalars(
        sa.select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)
    ).all()
    assert kinds.count("breach_warning") == 1 and kinds.count("sla_breached") == 1
    assert len(smtp_server.messages) == 3


def test_no_warning_outside_business_hours(plan, smtp_server):
    ticket = filed_at(plan, london(2026, 11, 27, 14, 0))  # first response due Mon 09:30
    assert ticket.first_response_due == london(2026, 11, 30, 9, 30)
    # Saturday: only 30 business minutes are left, but nobody is at work.
    assert breaches.warn_breaches(london(2026, 11, 28, 10, 0)) == 0
    assert breaches.warn_breaches(london(2026, 11, 30, 9, 0)) == 3
    assert len(warnings_sent(smtp_server, 3)) == 3


def test_warning_window_is_business_time_and_configurable(app, plan, smtp_server):
    app.config["PRE_BREACH_WARNING"] = "2h"
    ticket = filed_at(plan, london(2026, 11, 27, 16, 0))  # first response due Mon 11:30
    # Friday 17:20 is 10 business minutes + 2h30 from the due time: too early.
    assert breaches.warn_breaches(london(2026, 11, 27, 17, 20)) == 0
    assert breaches.warn_breaches(london(2026, 11, 30, 9, 30)) == 3
    db.session.refresh(ticket)
    assert ticket.breach_warned == ["first_response"]


def test_met_first_response_then_resolution_warning(plan, smtp_server):
    ticket = filed_at(plan, london(2026, 11, 27, 16, 0))  # resolution due Tue 1 Dec 15:00
    sla.responded(ticket, london(2026, 11, 30, 9, 45))
    db.session.commit()
    assert breaches.warn_breaches(london(2026, 11, 30, 11, 0)) == 0
    assert breaches.warn_breaches(london(2026, 12, 1, 14, 15)) == 3
    mails = warnings_sent(smtp_server, 3)
    assert "SLA warning: resolution due Tue 1 Dec, 15:00" in mails[0]["Subject"]
    db.session.refresh(ticket)
    assert ticket.breach_warned == ["resolution"] and ticket.breached == []


def test_resolved_and_paused_tickets_are_not_warned(plan, smtp_server):
    resolved = filed_at(plan, london(2026, 11, 27, 16, 0))
    resolved.first_responded_at = london(2026, 11, 30, 9, 5)
    resolved.status = "resolved"
    waiting = filed_at(plan, london(2026, 11, 27, 16, 0))
    sla.responded(waiting, london(2026, 11, 30, 9, 5))
    waiting.status = "waiting_on_client"
    sla.status_changed(waiting, london(2026, 11, 30, 10, 0))
    db.session.commit()
    assert breaches.warn_breaches(london(2026, 12, 1, 14, 15)) == 0
    assert breaches.warn_breaches(london(2026, 12, 1, 16, 0)) == 0
    db.session.refresh(resolved)
    db.session.refresh(waiting)
    assert resolved.breached == [] and waiting.breached == []
    assert smtp_server.messages == []


def test_clients_without_sla_and_emergencies_are_exempt(runner, plan, smtp_server):
    invoke(runner, "client", "contract", "Acme Shop", "--sla", "Always")
    db.session.expire_all()
    # An SLA emergency with due times like a standard request's: paging handles it instead.
    request = tickets.Request("Site down", "All 500s.", "Jo", "jo@example.com")
    emergency = tickets.new_ticket(plan, request, kind="emergency", category="offline")
    start = utcnow() - timedelta(hours=5)
    emergency.created_at, emergency.sla_plan_name = start, "Always"
    emergency.first_response_due = start + timedelta(minutes=30)
    emergency.resolution_due = emergency.effective_due_at = start + timedelta(hours=5, minutes=20)
    db.session.commit()
    invoke(runner, "client", "contract", "Acme Shop")
    db.session.expire_all()
    fcfs = filed_at(plan, utcnow() - timedelta(days=30))
    assert fcfs.sla_plan_name is None
    assert breaches.warn_breaches() == 0
    db.session.refresh(emergency)
    assert emergency.breached == [] and emergency.breach_warned == []
    assert fcfs.breached == [] and fcfs.breach_warned == []
    assert smtp_server.messages == []


def test_worker_minute_job_sends_the_warnings(runner, plan, smtp_server):
    invoke(runner, "client", "contract", "Acme Shop", "--sla", "Always")
    db.session.expire_all()
    ticket = filed_at(plan, utcnow() - timedelta(hours=3, minutes=30))
    assert ticket.first_response_due.astimezone(ZoneInfo("UTC")) > utcnow()
    run_periodic()
    mails = warnings_sent(smtp_server, 3)
    assert all(f"[{ticket.reference}] SLA warning: first response" in m["Subject"] for m in mails)
    run_periodic()
    assert len(smtp_server.messages) == 3
