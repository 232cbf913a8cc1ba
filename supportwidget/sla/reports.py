"""The monthly SLA report per client: what agencies send their clients every month.

For the tickets filed in the month (in DEFAULT_TIMEZONE): how many, first responses and
resolutions on time (a ticket counts once its target has passed or been met; one still
running is left out), median times, emergencies and the median time to acknowledge them.
And each site's uptime in the month, from the uptime watch's hourly totals.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

import sqlalchemy as sa
from flask import current_app, render_template

from supportwidget.models import Client, Notification, Site, Ticket, db, utcnow
from supportwidget.notify import messages, outbox
from supportwidget.vocab import TicketStatus
from supportwidget.watch import overview

CSV_HEADER = [
    "client", "tickets", "first_response_on_time_pct", "resolution_on_time_pct",
    "median_first_response_minutes", "median_resolution_minutes", "emergencies",
    "median_acknowledge_minutes", "site_uptime_pct",
]  # fmt: skip


@dataclass(frozen=True)
class SiteUptime:
    """One site's month as the uptime watch saw it."""

    name: str
    uptime: float | None  # the share of good checks; None: no check in the month
    watched: bool  # the watch checks it now

    @property
    def shown(self) -> str:
        """Say it in a few characters: '99.79%', 'not watched' or 'no checks'."""
        if self.uptime is not None:
            return f"{round(100 * self.uptime, 2):g}%"
        return "no checks" if self.watched else "not watched"


@dataclass
class ClientReport:
    """One client's month."""

    client: Client
    tickets: int
    first_on_time: tuple[int, int]  # on time, counted
    resolution_on_time: tuple[int, int]
    median_first_minutes: float | None
    median_resolution_minutes: float | None
    emergencies: int
    median_ack_minutes: float | None
    sites: list[SiteUptime] = field(default_factory=list)

    @staticmethod
    def percent(pair: tuple[int, int]) -> float | None:
        """Return on-time as a percentage, or None when nothing could be counted."""
        return None if pair[1] == 0 else round(100 * pair[0] / pair[1], 1)

    @property
    def first_pct(self) -> float | None:
        return self.percent(self.first_on_time)

    @property
    def resolution_pct(self) -> float | None:
        return self.percent(self.resolution_on_time)

    def csv_row(self) -> list[str]:
        """Return the client's CSV row (empty cells where nothing could be measured)."""
        values = [
            self.first_pct, self.resolution_pct, self.median_first_minutes,
            self.median_resolution_minutes,
        ]  # fmt: skip
        shown = ["" if v is None else f"{v:g}" for v in values]
        ack = "" if self.median_ack_minutes is None else f"{self.median_ack_minutes:g}"
        uptime = "; ".join(f"{s.name}={s.shown.removesuffix('%')}" for s in self.sites)
        return [self.client.name, str(self.tickets), *shown, str(self.emergencies), ack, uptime]


def _minutes(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 60, 1)


def _median(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def resolved_at(ticket: Ticket) -> datetime | None:
    """Return when the ticket was last resolved or closed, if it is now."""
    if ticket.is_open:
        return None
    finished = {str(s) for s in TicketStatus.finished()}
    moments = [
        e.created_at for e in ticket.events if e.kind == "status" and e.detail.get("to") in finished
    ]
    return max(moments) if moments else None


def _on_time(done: datetime | None, due: datetime | None, now: datetime) -> bool | None:
    """Tell whether a target was met; None while it still runs (or there is none)."""
    if due is None:
        return None
    if done is not None:
        return done <= due
    return False if now > due else None


def client_report(client: Client, tickets: list[Ticket], now: datetime) -> ClientReport:
    """Compute one client's figures from their tickets of the month."""
    standard = [t for t in tickets if not t.is_emergency]
    emergencies = [t for t in tickets if t.is_emergency]
    first = [_on_time(t.first_responded_at, t.first_response_due, now) for t in standard]
    resolved = {t.id: resolved_at(t) for t in standard}
    resolution = [_on_time(resolved[t.id], t.resolution_due, now) for t in standard]
    return ClientReport(
        client=client,
        tickets=len(tickets),
        first_on_time=(first.count(True), len([x for x in first if x is not None])),
        resolution_on_time=(resolution.count(True), len([x for x in resolution if x is not None])),
        median_first_minutes=_median(
            [_minutes(t.created_at, t.first_responded_at) for t in standard if t.first_responded_at]
        ),
        median_resolution_minutes=_median(
            [_minutes(t.created_at, done) for t in standard if (done := resolved[t.id])]
        ),
        emergencies=len(emergencies),
        median_ack_minutes=_median(
            [_minutes(t.created_at, t.acknowledged_at) for t in emergencies if t.acknowledged_at]
        ),
    )


def monthly(start: datetime, end: datetime, client_id: int | None = None) -> list[ClientReport]:
    """Return the report of every client (or one) for tickets filed in [start, end)."""
    query = sa.select(Client).order_by(Client.name)
    if client_id is not None:
        query = query.where(Client.id == client_id)
    now = utcnow()
    reports = []
    for client in db.session.scalars(query):
        tickets = db.session.scalars(
            sa.select(Ticket)
            .join(Site, Ticket.site_id == Site.id)
            .where(Site.client_id == client.id, Ticket.created_at >= start, Ticket.created_at < end)
            .order_by(Ticket.id)
        ).all()
        report = client_report(client, list(tickets), now)
        report.sites = site_uptimes(client, start, end)
        reports.append(report)
    return reports


def site_uptimes(client: Client, start: datetime, end: datetime) -> list[SiteUptime]:
    """Return the uptime of each of a client's sites in [start, end), by name."""
    sites = sorted(client.sites, key=lambda site: site.name)
    shares = overview.uptimes_between([site.id for site in sites], start, end)
    return [
        SiteUptime(site.name, shares[site.id], site.enabled and site.watch_enabled)
        for site in sites
    ]


def as_csv(reports: list[ClientReport]) -> str:
    """Return the report as CSV, one row per client."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_HEADER)
    for report in reports:
        # A client's name could start like a formula: defuse it as billing does.
        row = report.csv_row()
        row[0] = ("'" + row[0]) if row[0][:1] in ("=", "+", "-", "@", "\t", "\r") else row[0]
        writer.writerow(row)
    return out.getvalue()


def send(month: str, reports: list[ClientReport]) -> list[Notification]:
    """Queue the report to each client's contacts (one e-mail each) and commit."""
    rows = []
    for report in reports:
        for address in report.client.emails or []:
            rows.append(
                messages.notice(
                    "sla_report",
                    address,
                    "sla-report",
                    month=month,
                    report=report,
                    chart=render_template("reports/_sla_chart.svg", reports=[report]),
                )  # fmt: skip
            )
    db.session.commit()
    outbox.schedule(rows)
    return rows


def default_month() -> str:
    """Return last month as YYYY-MM: the one a monthly report is about."""
    today = utcnow()
    year, number = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{number:02d}"


def timezone() -> str:
    """Return the timezone months are counted in."""
    return str(current_app.config["DEFAULT_TIMEZONE"])
