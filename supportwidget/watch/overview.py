"""What the uptime watch found, read for people: status, uptime, response times, incidents.

Read-only: the site page, the queue's red dots and GET /api/v1/sites all ask here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from supportwidget.models import Site, SiteCheck, SiteHour, SiteIncident, db, utcnow
from supportwidget.vocab import WatchStatus

#: The uptime windows the site page shows, in hours.
WINDOWS = (("24 h", 24), ("7 d", 24 * 7), ("30 d", 24 * 30))
#: The response-time chart: the last 24 hours in buckets of 10 minutes.
CHART_HOURS, BUCKET_MINUTES = 24, 10
CHART_WIDTH, CHART_HEIGHT = 720, 160


def status_of(site: Site, down: bool) -> WatchStatus:
    """Return how the watch last found a site: up, down, not checked yet, or not watched."""
    if not (site.enabled and site.watch_enabled):
        return WatchStatus.OFF
    if down or site.watch_failures >= int(current_app.config["WATCH_FAILURES"]):
        return WatchStatus.DOWN
    return WatchStatus.UP if site.watch_checked_at else WatchStatus.UNKNOWN


def down_site_ids(site_ids: Iterable[int] | None = None) -> set[int]:
    """Return the sites (of these, or all) with an incident they have not come back from."""
    query = sa.select(SiteIncident.site_id).where(
        SiteIncident.ended_at.is_(None), SiteIncident.recovered_at.is_(None)
    )
    if site_ids is not None:
        query = query.where(SiteIncident.site_id.in_(list(site_ids)))
    return set(db.session.scalars(query))


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def uptimes_24h(site_ids: list[int], now: datetime | None = None) -> dict[int, float | None]:
    """Return each site's share of good checks over the last 24 hours (None: no checks)."""
    return uptimes_between(site_ids, _hour(now or utcnow()) - timedelta(hours=23))


def uptimes_between(
    site_ids: list[int], start: datetime, end: datetime | None = None
) -> dict[int, float | None]:
    """Return each site's share of good checks in the hours from `start` until `end`
    (None: no checks). Hours are whole UTC hours: one that starts before `start` is left out."""
    query = sa.select(
        SiteHour.site_id, sa.func.sum(SiteHour.checks), sa.func.sum(SiteHour.failures)
    ).where(SiteHour.site_id.in_(site_ids), SiteHour.hour >= start)
    if end is not None:
        query = query.where(SiteHour.hour < end)
    rows = db.session.execute(query.group_by(SiteHour.site_id)).all()
    found = {sid: (checks - failures) / checks for sid, checks, failures in rows if checks}
    return {sid: found.get(sid) for sid in site_ids}


def uptimes(site_id: int, now: datetime | None = None) -> dict[str, float | None]:
    """Return a site's uptime over 24 h, 7 d and 30 d (whole hours, the current one too)."""
    hour = _hour(now or utcnow())
    result: dict[str, float | None] = {}
    for label, hours in WINDOWS:
        checks, failures = db.session.execute(
            sa.select(sa.func.sum(SiteHour.checks), sa.func.sum(SiteHour.failures)).where(
                SiteHour.site_id == site_id, SiteHour.hour >= hour - timedelta(hours=hours - 1)
            )
        ).one()
        result[label] = (checks - (failures or 0)) / checks if checks else None
    return result


@dataclass(frozen=True)
class Chart:
    """The response-time chart, ready to draw as SVG: a line of good checks, failures marked."""

    points: list[tuple[float, float]]  # the average response time of each bucket (x, y)
    failures: list[float]  # x of each bucket with a failed check
    top_ms: int  # the response time at the top of the chart
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT

    @property
    def line(self) -> str:
        """Return the points as an SVG polyline's `points`."""
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)

    @property
    def empty(self) -> bool:
        return not self.points and not self.failures


def chart(site_id: int, now: datetime | None = None) -> Chart:
    """Return the last 24 hours of a site's checks, averaged in 10-minute buckets."""
    now = now or utcnow()
    start = now - timedelta(hours=CHART_HOURS)
    buckets = CHART_HOURS * 60 // BUCKET_MINUTES
    good: dict[int, list[int]] = {}
    failed: set[int] = set()
    for at, ok, ms in db.session.execute(
        sa.select(SiteCheck.checked_at, SiteCheck.ok, SiteCheck.elapsed_ms).where(
            SiteCheck.site_id == site_id, SiteCheck.checked_at > start
        )
    ):
        index = min(int((at - start).total_seconds() // (BUCKET_MINUTES * 60)), buckets - 1)
        if ok:
            good.setdefault(index, []).append(ms)
        else:
            failed.add(index)
    averages = {i: sum(v) / len(v) for i, v in good.items()}
    top = max(100, *(int(v) for v in averages.values())) if averages else 100
    step = CHART_WIDTH / (buckets - 1)
    points = [
        (i * step, CHART_HEIGHT - averages[i] / top * (CHART_HEIGHT - 10)) for i in sorted(averages)
    ]
    return Chart(points, [i * step for i in sorted(failed)], top)


def incidents(site_id: int, limit: int = 10) -> list[SiteIncident]:
    """Return a site's latest incidents, newest first."""
    return list(
        db.session.scalars(
            sa.select(SiteIncident)
            .where(SiteIncident.site_id == site_id)
            .order_by(SiteIncident.id.desc())
            .limit(limit)
        )
    )


def latest_check(site_id: int) -> SiteCheck | None:
    """Return a site's latest check."""
    return db.session.scalar(
        sa.select(SiteCheck)
        .where(SiteCheck.site_id == site_id)
        .order_by(SiteCheck.checked_at.desc())
        .limit(1)
    )
