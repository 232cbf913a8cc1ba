"""Warnings the uptime watch raises besides outages: certificates about to expire, and a
"possibly hacked" ticket escalated to an emergency when the homepage was defaced too.

Hacked: the WordPress heartbeat's changed core files alone open a standard ticket (an
update done by hand looks the same). The homepage's content changing beyond
CHANGED_BEYOND as well is what a defacement looks like: the ticket becomes a `hacked`
emergency, paged like a client's. Either signal may come first: the heartbeat checks the
homepage when it opens its ticket, and every watch check with a fingerprint checks for an
open "possibly hacked" ticket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from supportwidget.emergencies import paging
from supportwidget.models import Site, SiteCheck, Ticket, TicketEvent, db, utcnow
from supportwidget.notify import outbox
from supportwidget.platform import database
from supportwidget.tickets import filing
from supportwidget.vocab import EmergencyCategory, TicketKind, TicketStatus
from supportwidget.watch.fetch import Found, similarity

log = logging.getLogger(__name__)

#: A certificate expiring within this many days opens a ticket (renewal usually runs at 30).
TLS_WARN_DAYS = 14
#: The share of the homepage's 3-word runs gone since the last good check that makes a
#: "possibly hacked" ticket an emergency. Edits (a news item, a price, a date) keep most
#: runs; a defaced page keeps none. The 8-hash sketch estimates the share in steps of 1/8
#: with a spread of about ±0.18 near the middle, so the line sits halfway.
CHANGED_BEYOND = 0.5
#: The last good check is the latest one made this long before the core change was
#: reported: the files (and the page) may have changed any time since the previous
#: heartbeat, and WP-Cron beats only when the site has visitors, so a quiet site's
#: heartbeats can be hours apart. A day covers that and fits the two days checks are kept.
BEFORE_REPORT = timedelta(hours=24)
#: The form nonce prefix of the heartbeat's "possibly hacked" tickets.
CORE_CHANGE = "core-change:"


def _utc(moment: datetime) -> datetime:
    """Return a moment as aware UTC (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def warn_expiring(site_id: int, found: Found) -> Ticket | None:
    """Open a standard ticket for a certificate expiring within TLS_WARN_DAYS, once per
    certificate: a renewed one (another expiry) is warned about again when its turn comes."""
    expires, days = found.tls_expires, found.tls_days
    if expires is None or days is None or days >= TLS_WARN_DAYS:
        return None
    site = db.session.get(Site, site_id)
    if site is None or (site.watch_tls_warned and _utc(site.watch_tls_warned) == expires):
        return None
    when = f"{expires:%Y-%m-%d %H:%M} UTC"
    left = "has expired" if days < 0 else f"expires in {days} day{'' if days == 1 else 's'}"
    request = filing.Request(
        subject=f"TLS certificate of {site.name} {left} ({expires:%Y-%m-%d})",
        description=(
            f"The uptime watch found that the TLS certificate of {site.watched_url} {left}, "
            f"on {when}. Renew it (or fix its automatic renewal) before then: after that "
            "date browsers refuse the site with a security warning."
        ),
        name=site.client.name[:120],
        email=site.client.emails[0],
        page_meta={"source": "uptime watch", "tls_expires": expires.isoformat()},
        nonce=f"tls:{site.id}:{expires:%Y%m%d%H%M%S}",
    )
    site.watch_tls_warned = expires  # committed with the ticket
    ticket = filing.open_standard_request(site, request)
    if _utc(site.watch_tls_warned) != expires:  # already filed: the nonce found that ticket
        site.watch_tls_warned = expires
        db.session.commit()
    log.warning("uptime watch: %s certificate %s, opened %s", site.name, left, ticket.reference)
    return ticket


@dataclass(frozen=True)
class Change:
    """How much the homepage changed, and against which check."""

    changed: float  # 0.0 (the same words) to 1.0 (nothing in common)
    since: datetime  # the last good check compared against

    @property
    def text(self) -> str:
        """Say it for the ticket's timeline."""
        return (
            f"homepage changed {round(self.changed * 100)} % since the last good check at "
            f"{_utc(self.since):%Y-%m-%d %H:%M} UTC"
        )


def homepage_change(ticket: Ticket) -> Change | None:
    """Compare the latest good check's fingerprint with the last good check before the
    core change was reported (the oldest one kept if none is that old)."""
    good = sa.select(SiteCheck).where(
        SiteCheck.site_id == ticket.site_id, SiteCheck.ok, SiteCheck.fingerprint.is_not(None)
    )
    latest = db.session.scalar(good.order_by(SiteCheck.checked_at.desc()).limit(1))
    before = ticket.created_at - BEFORE_REPORT
    baseline = db.session.scalar(
        good.where(SiteCheck.checked_at <= before).order_by(SiteCheck.checked_at.desc()).limit(1)
    ) or db.session.scalar(good.order_by(SiteCheck.checked_at).limit(1))
    if latest is None or baseline is None or latest.id == baseline.id:
        return None
    assert latest.fingerprint and baseline.fingerprint
    return Change(1 - similarity(latest.fingerprint, baseline.fingerprint), baseline.checked_at)


def hacked_ticket(site_id: int) -> Ticket | None:
    """Return a site's open "possibly hacked" standard ticket, if any."""
    return db.session.scalar(
        _hacked().where(Ticket.site_id == site_id).order_by(Ticket.id.desc()).limit(1)
    )


def _hacked() -> sa.Select[Ticket]:
    return sa.select(Ticket).where(
        Ticket.form_nonce.startswith(CORE_CHANGE),
        Ticket.kind == TicketKind.STANDARD,
        Ticket.status.not_in(TicketStatus.finished()),
    )


def sites_with_hacked_ticket(site_ids: list[int]) -> list[int]:
    """Return which of these sites have an open "possibly hacked" standard ticket."""
    if not site_ids:
        return []
    query = _hacked().with_only_columns(Ticket.site_id).where(Ticket.site_id.in_(site_ids))
    return sorted(set(db.session.scalars(query)))


def escalate_if_defaced(ticket: Ticket) -> bool:
    """Make a "possibly hacked" ticket a `hacked` emergency if the homepage changed beyond
    CHANGED_BEYOND too: paged like a client's, no billing consent, opened by the watch."""
    if ticket.kind != TicketKind.STANDARD or not ticket.is_open:
        return False
    change = homepage_change(ticket)
    if change is None or change.changed < CHANGED_BEYOND:
        return False
    with database.write_lock():
        # Heartbeat and watcher may decide at once: the row lock lets one of them escalate.
        db.session.refresh(ticket, with_for_update=True)
        if ticket.kind != TicketKind.STANDARD or not ticket.is_open:
            db.session.rollback()
            return False
        now = utcnow()
        ticket.kind = TicketKind.EMERGENCY
        ticket.category = EmergencyCategory.HACKED
        ticket.billing_consent = False
        ticket.opened_by_watch = True
        ticket.events.append(
            TicketEvent(
                kind="escalated",
                detail={"to": EmergencyCategory.HACKED.value, "text": change.text},
            )
        )
        paging.schedule_emergency(ticket, ticket.site, now)
        # The client's contact was told of the standard ticket already.
        rows = paging.notify_emergency(ticket, tell_requester=False)
        db.session.commit()
    outbox.schedule(rows)
    paging.schedule_repage(ticket.id, ticket.next_page_at)
    log.warning(
        "uptime watch: %s escalated to a hacked emergency (%s)", ticket.reference, change.text
    )
    return True


def act_on_checks(checks: list[tuple[int, Found]]) -> int:
    """Warn of expiring certificates and escalate defaced "possibly hacked" sites; return
    the tickets opened or escalated."""
    acted = sum(warn_expiring(site_id, found) is not None for site_id, found in checks)
    printed = [site_id for site_id, found in checks if found.ok and found.fingerprint]
    for site_id in sites_with_hacked_ticket(printed):
        ticket = hacked_ticket(site_id)
        acted += ticket is not None and escalate_if_defaced(ticket)
    return acted
