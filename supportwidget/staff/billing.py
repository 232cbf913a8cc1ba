"""Emergency billing: confirmed emergencies of clients without an SLA, per ticket, at the
client's hourly rate in CURRENCY."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, render_template, request

from supportwidget.models import Client, Site, Ticket, TimeEntry, db, parse_id, utcnow
from supportwidget.sla import reports
from supportwidget.staff.auth import login_required
from supportwidget.tickets.actions import not_billed_because
from supportwidget.vocab import TicketKind, TriageDecision

bp = Blueprint("billing", __name__, url_prefix="/dashboard/reports")
MONTH = re.compile(r"(\d{4})-(\d{2})")  # whole string only: fullmatch, not $ (a newline)
CENT = Decimal("0.01")


class BillingError(ValueError):
    """A report request that cannot be answered; says why."""


@dataclass
class BillingLine:
    """One billable ticket of a month: a confirmed emergency of a client without an SLA."""

    client: str
    reference: str
    filed_at: datetime
    category: str | None
    minutes: int
    rate: Decimal | None
    amount: Decimal


CSV_HEADER = [
    "client", "reference", "filed_at", "category", "minutes", "hourly_rate", "currency", "amount",
]  # fmt: skip


def month_bounds(month: str, timezone: str = "UTC") -> tuple[datetime, datetime]:
    """Return the start and end (exclusive) of 'YYYY-MM' in the agency's timezone."""
    match = MONTH.fullmatch(month or "")
    # Year 9999's December would end in year 10000, which datetime cannot hold.
    if (
        match is None
        or not 1 <= int(match.group(2)) <= 12
        or not 2000 <= int(match.group(1)) < 9999
    ):
        raise BillingError(f"month must look like 2026-11, not {month!r}.")
    year, number = int(match.group(1)), int(match.group(2))
    tz = ZoneInfo(timezone)
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return start, end


def amount_for(minutes: int, rate: Decimal | None) -> Decimal:
    """Return minutes at an hourly rate, rounded half-up to cents."""
    if rate is None:
        return Decimal("0.00")
    return (Decimal(minutes) * Decimal(rate) / Decimal(60)).quantize(CENT, ROUND_HALF_UP)


def emergency_billing(start: datetime, end: datetime) -> list[BillingLine]:
    """Return each confirmed emergency outside an SLA with billable minutes logged in the month."""
    rows = db.session.execute(
        sa.select(
            Client.name,
            Client.hourly_rate,
            Ticket.id,
            Ticket.created_at,
            Ticket.category,
            sa.func.sum(TimeEntry.minutes),
        )
        .join(Ticket, TimeEntry.ticket_id == Ticket.id)
        .join(Site, Ticket.site_id == Site.id)
        .join(Client, Site.client_id == Client.id)
        .where(
            Ticket.kind == TicketKind.EMERGENCY,
            Ticket.triage_decision == TriageDecision.CONFIRM,
            # The contract at the time of the emergency decides, not today's.
            Ticket.sla_plan_name.is_(None),
            TimeEntry.billable.is_(True),
            TimeEntry.created_at >= start,
            TimeEntry.created_at < end,
        )
        .group_by(Client.id, Client.name, Client.hourly_rate, Ticket.id)
        .order_by(Client.name, Ticket.id)
    ).all()
    return [
        BillingLine(
            name,
            f"SUP-{ticket_id}",
            filed_at,
            category,
            int(minutes),
            rate,
            amount_for(int(minutes), rate),
        )  # fmt: skip
        for name, rate, ticket_id, filed_at, category, minutes in rows
    ]


def _report() -> tuple[str, list[BillingLine]]:
    """Read ?month= (default: this month) and compute the report; 400 on a bad month."""
    timezone = current_app.config["DEFAULT_TIMEZONE"]
    month = request.args.get("month") or utcnow().astimezone(ZoneInfo(timezone)).strftime("%Y-%m")
    try:
        start, end = month_bounds(month, timezone)
    except BillingError as exc:
        abort(400, str(exc))
    return month, emergency_billing(start, end)


# A cell, or a part of it after a separator some spreadsheet may split on, that starts
# (after spaces) with a character spreadsheets read as a formula (OWASP CSV injection).
FORMULA_START = re.compile(r"(^|[,;])(?=[ ]*[=+\-@\t\r])")


def _cell(value: object) -> str:
    """Keep spreadsheets from running a cell as a formula: a quote before each formula start."""
    return FORMULA_START.sub(r"\1'", str(value))


@bp.get("/billing.csv")
@login_required
def report_csv() -> Response:
    """Download the month's billable tickets as CSV, one row per ticket, in CURRENCY."""
    month, lines = _report()
    timezone = ZoneInfo(current_app.config["DEFAULT_TIMEZONE"])
    currency = current_app.config["CURRENCY"]
    out = io.StringIO()
    # Every cell quoted: a separator inside a name never splits it, whatever the delimiter.
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_HEADER)
    for line in lines:
        rate = "" if line.rate is None else f"{line.rate:.2f}"
        filed = line.filed_at.astimezone(timezone).isoformat(timespec="minutes")
        cells = [
            line.client, line.reference, filed, line.category or "", line.minutes, rate,
            currency, line.amount,
        ]  # fmt: skip
        writer.writerow([_cell(cell) for cell in cells])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="billing-{month}.csv"'
    return response


@bp.get("/billing")
@login_required
def report() -> str:
    """Show the month's billable tickets, and billable time that will not be billed."""
    month, lines = _report()
    total = sum((line.amount for line in lines), Decimal("0.00"))
    start, end = month_bounds(month, current_app.config["DEFAULT_TIMEZONE"])
    return render_template(
        "dashboard/billing.html",
        month=month,
        lines=lines,
        total=total,
        unbilled=unbilled_time(start, end),
    )


def unbilled_time(start: datetime, end: datetime) -> list[tuple[str, int, str]]:
    """Return tickets with billable time in the month that will not be billed, and why."""
    rows = db.session.execute(
        sa.select(Ticket, sa.func.sum(TimeEntry.minutes))
        .join(TimeEntry, TimeEntry.ticket_id == Ticket.id)
        .where(
            TimeEntry.billable.is_(True), TimeEntry.created_at >= start, TimeEntry.created_at < end
        )
        .group_by(Ticket.id)
        .order_by(Ticket.id)
    ).all()
    found = []
    for ticket, minutes in rows:
        why = not_billed_because(ticket)
        if why is not None:
            found.append((ticket.reference, int(minutes), why))
    return found


def _sla_report() -> tuple[str, list[reports.ClientReport]]:
    """Read ?month= (default: last month) and ?client=, and compute the SLA report."""
    month = request.args.get("month") or reports.default_month()
    client = request.args.get("client") or None
    client_id = parse_id(client) if client else None
    if client and client_id is None:
        abort(400, "client must be a client id.")
    try:
        start, end = month_bounds(month, current_app.config["DEFAULT_TIMEZONE"])
    except BillingError as exc:
        abort(400, str(exc))
    return month, reports.monthly(start, end, client_id)


@bp.get("/sla")
@login_required
def sla_report() -> str:
    """Show the month's SLA report per client, with a chart."""
    month, found = _sla_report()
    clients = db.session.scalars(sa.select(Client).order_by(Client.name)).all()
    return render_template(
        "dashboard/sla_report.html",
        month=month,
        reports=found,
        clients=clients,
        client=request.args.get("client", ""),
    )


@bp.get("/sla.csv")
@login_required
def sla_report_csv() -> Response:
    """Download the month's SLA report as CSV, one row per client."""
    month, found = _sla_report()
    response = Response(reports.as_csv(found), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="sla-{month}.csv"'
    return response
