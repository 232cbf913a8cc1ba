"""What the uptime watch's checks mean: keep them, and open, fold and close incidents.

An incident starts when WATCH_FAILURES checks in a row failed and a confirming check on a
fresh connection failed too: an emergency ticket (`offline`, or `broken` when the site
answers without its expected text), paged exactly like a client's. It lasts while that
ticket is open: the site coming back adds "back up after N min" and tells the staff paged;
failing again folds into the same ticket. Once the ticket is resolved the incident is over
and a later failure opens a new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from supportwidget.emergencies import paging
from supportwidget.models import (
    Site,
    SiteCheck,
    SiteHour,
    SiteIncident,
    Ticket,
    TicketEvent,
    db,
    utcnow,
)
from supportwidget.notify import messages, outbox
from supportwidget.platform import database
from supportwidget.tickets import filing
from supportwidget.vocab import EmergencyCategory
from supportwidget.watch import signals
from supportwidget.watch.fetch import Found

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checked:
    """One site's check as the watcher made it: when, what, and whether it was confirmed."""

    site_id: int
    at: datetime
    found: Found
    # A failure that reached WATCH_FAILURES and failed again on a fresh connection.
    confirmed: bool = False


def record(batch: list[Checked]) -> int:
    """Keep a batch of checks and act on what they mean; return the incidents and tickets
    changed (outages, expiring certificates, defaced "possibly hacked" sites)."""
    if not batch:
        return 0
    with database.write_lock():
        store(batch)
        # Most checks change nothing: a failure not yet confirmed, or up with no incident.
        ids = [c.site_id for c in batch if c.found.ok]
        open_ids = (
            set(
                db.session.scalars(
                    sa.select(SiteIncident.site_id).where(
                        SiteIncident.site_id.in_(ids), SiteIncident.ended_at.is_(None)
                    )
                )
            )
            if ids
            else set()
        )
        changed = [c for c in batch if c.confirmed or c.site_id in open_ids]
        db.session.commit()
    acted = sum(act(checked) for checked in changed)
    try:
        acted += signals.act_on_checks([(c.site_id, c.found) for c in batch])
    except Exception:  # noqa: BLE001 - the checks are kept; the next batch tries again
        db.session.rollback()
        log.exception("uptime watch: could not act on certificate or hacked signals")
    return acted


def store(batch: list[Checked]) -> None:
    """Add the checks, their hours' totals and each site's latest state (not committed)."""
    db.session.connection().execute(
        sa.insert(SiteCheck),
        [
            {
                "site_id": c.site_id,
                "checked_at": c.at,
                "ok": c.found.ok,
                "status": c.found.result.status,
                "elapsed_ms": int(c.found.result.elapsed * 1000),
                "error": (c.found.result.error or "")[:200] or None,
                "tls_days": c.found.tls_days,
                "fingerprint": c.found.fingerprint,
            }
            for c in batch
        ],
    )
    add_hours(batch)
    good = [c for c in batch if c.found.ok]
    bad = [c for c in batch if not c.found.ok]
    connection = db.session.connection()
    if good:
        connection.execute(
            sa.update(Site)
            .where(Site.id == sa.bindparam("sid"))
            .values(
                watch_checked_at=sa.bindparam("at"),
                watch_failures=0,
                watch_fingerprint=sa.func.coalesce(sa.bindparam("fp"), Site.watch_fingerprint),
            ),
            [{"sid": c.site_id, "at": c.at, "fp": c.found.fingerprint} for c in good],
        )
    if bad:
        connection.execute(
            sa.update(Site)
            .where(Site.id == sa.bindparam("sid"))
            .values(watch_checked_at=sa.bindparam("at"), watch_failures=Site.watch_failures + 1),
            [{"sid": c.site_id, "at": c.at} for c in bad],
        )


def add_hours(batch: list[Checked]) -> None:
    """Add the checks to their sites' hourly totals (one upsert per site and hour)."""
    totals: dict[tuple[int, datetime], list[int]] = {}
    for c in batch:
        hour = c.at.replace(minute=0, second=0, microsecond=0)
        row = totals.setdefault((c.site_id, hour), [0, 0, 0])
        row[0] += 1
        row[1] += 0 if c.found.ok else 1
        row[2] += int(c.found.result.elapsed * 1000) if c.found.ok else 0
    values = [
        {"site_id": s, "hour": h, "checks": n, "failures": f, "elapsed_ms": ms}
        for (s, h), (n, f, ms) in totals.items()
    ]
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(SiteHour)
    db.session.connection().execute(
        insert.on_conflict_do_update(
            index_elements=["site_id", "hour"],
            set_={
                name: getattr(SiteHour, name) + getattr(insert.excluded, name)
                for name in ("checks", "failures", "elapsed_ms")
            },
        ),
        values,
    )


def open_incident_of(site_id: int) -> SiteIncident | None:
    """Return a site's incident that is not over, if any."""
    return db.session.scalar(
        sa.select(SiteIncident)
        .where(SiteIncident.site_id == site_id, SiteIncident.ended_at.is_(None))
        .order_by(SiteIncident.id.desc())
        .limit(1)
    )


def act(checked: Checked) -> bool:
    """Open, fold, recover or end the site's incident as this check says; True if changed."""
    site = db.session.get(Site, checked.site_id)
    if site is None:
        return False
    incident = open_incident_of(site.id)
    if incident is not None and (incident.ticket is None or not incident.ticket.is_open):
        incident.ended_at = checked.at  # its ticket was resolved: this incident is over
        db.session.commit()
        incident = None
    if checked.found.ok:
        return incident is not None and recovered(incident, checked)
    if not checked.confirmed:
        return False
    if incident is None:
        open_incident(site, checked)
        return True
    return down_again(incident, checked) if incident.recovered_at is not None else False


def open_incident(site: Site, checked: Checked) -> Ticket:
    """Open an incident and its emergency, paged like a client's (one transaction)."""
    found = checked.found
    category = EmergencyCategory.BROKEN if found.text_missing else EmergencyCategory.OFFLINE
    incident = SiteIncident(
        site_id=site.id,
        category=category,
        started_at=checked.at,
        error=found.result.summary[:200],
    )
    what = "does not show its expected text" if found.text_missing else "is down"
    request = filing.Request(
        subject=f"{site.name} {what} (uptime watch)",
        description=(
            f"The uptime watch found {site.watched_url} failing "
            f"{current_app.config['WATCH_FAILURES']} times in a row and again on a fresh "
            f"connection: {found.result.summary}."
        ),
        name=site.client.name[:120],
        email=site.client.emails[0] if site.client.emails else messages.staff_recipients()[0][0],
        page_meta={"source": "uptime watch"},
        nonce=f"watch:{site.id}:{checked.at.isoformat()}"[:64],
    )

    def attach(ticket: Ticket) -> None:
        incident.ticket_id = ticket.id
        db.session.add(incident)

    ticket = paging.open_emergency(
        site,
        request,
        category,
        None,
        billing_consent=False,
        site_check=found.result,
        opened_by_watch=True,
        with_ticket=attach,
    )
    log.warning("uptime watch: %s %s, opened %s", site.name, what, ticket.reference)
    return ticket


def recovered(incident: SiteIncident, checked: Checked) -> bool:
    """Note on the ticket that the site is back and tell the staff paged; once per outage."""
    if incident.recovered_at is not None:
        return False
    ticket = incident.ticket
    assert ticket is not None
    down_since = _down_since(incident)
    minutes = max(round((checked.at - down_since).total_seconds() / 60), 1)
    incident.recovered_at = checked.at
    ticket.events.append(
        TicketEvent(
            kind="site_up",
            detail={"text": f"back up after {minutes} min", "check": checked.found.result.summary},
        )
    )
    rows = paging.tell_paged(ticket, "site_back_up", "watch-up", actor=None, minutes=minutes)
    db.session.commit()
    outbox.schedule(rows)
    return True


def _down_since(incident: SiteIncident) -> datetime:
    """Return when the current outage of an incident began (its start, or its last fold)."""
    folds = [
        e.created_at
        for e in incident.ticket.events  # type: ignore[union-attr]
        if e.kind == "site_down_again"
    ]
    return max([incident.started_at, *folds])


def down_again(incident: SiteIncident, checked: Checked) -> bool:
    """Fold a new outage into the open incident: noted on its ticket, staff told, no page."""
    ticket = incident.ticket
    assert ticket is not None
    incident.recovered_at = None
    incident.downs += 1
    problem = checked.found.result.brief
    ticket.events.append(
        TicketEvent(kind="site_down_again", created_at=checked.at, detail={"check": problem})
    )
    rows = paging.tell_paged(ticket, "site_down_again", "watch-down", actor=None, problem=problem)
    db.session.commit()
    outbox.schedule(rows)
    return True


def prune(now: datetime | None = None) -> int:
    """Forget single checks older than CHECKS_KEPT and hours older than HOURS_KEPT."""
    now = now or utcnow()
    deleted = db.session.execute(
        sa.delete(SiteCheck).where(SiteCheck.checked_at < now - SiteCheck.CHECKS_KEPT)
    )
    gone = getattr(deleted, "rowcount", 0)
    db.session.execute(sa.delete(SiteHour).where(SiteHour.hour < now - SiteHour.HOURS_KEPT))
    db.session.commit()
    return int(gone or 0)
