"""The uptime watcher: claim due sites in the database, check them concurrently, record.

Any number of watchers (inside `serve`, or `watch` processes) share the sites through the
database: a watcher claims a due site by moving its `watch_next_at` one interval on, in one
transaction (FOR UPDATE SKIP LOCKED on PostgreSQL, SQLite's single writer elsewhere), so
each site is checked by exactly one process per interval, and a killed watcher's sites fall
due again within one interval for whoever is alive. Checks run on one asyncio event loop,
at most CONCURRENCY at once, each bounded by WATCH_TIMEOUT: a hanging site holds one slot,
never another site's check. With the database or the job queue down, watching pauses (and
says so in the log) rather than take a blind spot for an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask import Flask, current_app

from supportwidget.models import Site, SiteIncident, db, utcnow
from supportwidget.platform import database, jobs
from supportwidget.platform.logs import configure
from supportwidget.watch import fetch
from supportwidget.watch.incidents import Checked, record

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Checks in flight at once on one watcher.
CONCURRENCY = 1000
#: Seconds between claims (and between writes of the results).
TICK = 0.5
#: Sites claimed at most per tick.
CLAIM_LIMIT = 2000


@dataclass(frozen=True)
class Claimed:
    """A site this watcher took for one check."""

    site_id: int
    url: str
    expect: str | None
    failures: int
    down: bool  # an incident is open and the site has not come back


def claim(name: str, limit: int, now: datetime | None = None) -> list[Claimed]:
    """Take up to `limit` due sites for this watcher: move each one interval on."""
    now = now or utcnow()
    default = int(current_app.config["WATCH_INTERVAL"])
    query = (
        sa.select(
            Site.id,
            Site.url,
            Site.watch_url,
            Site.watch_expect,
            Site.watch_interval,
            Site.watch_next_at,
            Site.watch_failures,
        )
        .where(
            Site.enabled,
            Site.watch_enabled,
            sa.or_(Site.watch_next_at.is_(None), Site.watch_next_at <= now),
        )
        .order_by(Site.watch_next_at.is_not(None), Site.watch_next_at, Site.id)
        .limit(limit)
    )
    postgres = db.engine.dialect.name == "postgresql"
    with database.write_lock():
        connection = db.session.connection()
        if postgres:
            query = query.with_for_update(skip_locked=True, of=Site)
        else:
            # Take SQLite's write lock before reading, so no other process claims the same rows.
            connection.execute(sa.update(Site).where(sa.false()).values(watch_failures=0))
        rows = connection.execute(query).all()
        moves = []
        for row in rows:
            interval = timedelta(seconds=row.watch_interval or default)
            due = row.watch_next_at or now
            # On time: the next round one interval after this one; far behind: from now.
            following = due + interval if due + interval > now else now + interval
            moves.append({"sid": row.id, "next": following})
        if moves:
            connection.execute(
                sa.update(Site)
                .where(Site.id == sa.bindparam("sid"))
                .values(watch_next_at=sa.bindparam("next"), watch_claimed_by=name[:100]),
                moves,
            )
        down = _down(row.id for row in rows)
        db.session.commit()
    return [
        Claimed(
            row.id,
            row.watch_url or row.url,
            row.watch_expect,
            row.watch_failures,
            row.id in down,
        )
        for row in rows
    ]


def _down(site_ids: Any) -> set[int]:
    """Return which of these sites have an incident and have not come back."""
    ids = list(site_ids)
    if not ids:
        return set()
    return set(
        db.session.scalars(
            sa.select(SiteIncident.site_id).where(
                SiteIncident.site_id.in_(ids),
                SiteIncident.ended_at.is_(None),
                SiteIncident.recovered_at.is_(None),
            )
        )
    )


class Watcher:
    """One watcher: an event loop on a thread of its own, in `serve` or a `watch` process."""

    def __init__(self, app: Flask, name: str | None = None, concurrency: int = CONCURRENCY):
        self.app = app
        self.name = name or f"watch:{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.stopped = threading.Event()
        self.results: list[Checked] = []
        self.thread: threading.Thread | None = None
        config = app.config
        self.timeout = float(config["WATCH_TIMEOUT"])
        self.failures = int(config["WATCH_FAILURES"])
        self.allow_private = bool(config["WATCH_ALLOW_PRIVATE"])
        self.paused = False
        # Set by a confirmed failure: record it now, not at the end of the tick (paging sooner).
        self.urgent = asyncio.Event()

    def start(self) -> None:
        """Start watching on a daemon thread."""
        # httpx logs every request at INFO: thousands a minute here.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.run()), name="supportwidget-watch", daemon=True
        )
        self.thread.start()
        log.info("watcher %s started", self.name)

    def stop(self, wait: float = 5.0) -> None:
        """Stop claiming; let the thread finish what it recorded."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(wait)

    def in_app(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a database step in the app's context on this thread, then release the session."""
        with self.app.app_context():
            try:
                return fn(*args)
            finally:
                db.session.remove()

    async def run(self) -> None:
        """Claim, check and record until stopped."""
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        writing: asyncio.Task[None] | None = None
        async with fetch.new_client(self.concurrency) as client:
            while not self.stopped.is_set():
                started = time.monotonic()
                free = self.concurrency - len(tasks)
                for claimed in await self._claim(min(free, CLAIM_LIMIT)) if free > 0 else []:
                    task = asyncio.create_task(self.check(client, slots, claimed))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                # Writing runs beside the next claims: a slow write never delays a check.
                if writing is None or writing.done():
                    writing = asyncio.create_task(self._flush())
                with contextlib.suppress(TimeoutError):
                    rest = max(TICK - (time.monotonic() - started), 0.01)
                    await asyncio.wait_for(self.urgent.wait(), rest)
                self.urgent.clear()
            if writing is not None:
                await writing
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout * 2 + 1)
            await self._flush()

    async def once(self) -> int:
        """Claim what is due now, check it all, record it; return how many were checked."""
        slots = asyncio.Semaphore(self.concurrency)
        async with fetch.new_client(self.concurrency) as client:
            claimed = await self._claim(CLAIM_LIMIT)
            await asyncio.gather(*(self.check(client, slots, c) for c in claimed))
        await self._flush()
        return len(claimed)

    async def _claim(self, limit: int) -> list[Claimed]:
        """Claim due sites, or pause (with a log) while the database or queue is down."""
        try:
            queue = await asyncio.to_thread(self.in_app, jobs.storage_status)
            if queue != "ok":
                raise RuntimeError(f"job queue {queue}")
            claimed = await asyncio.to_thread(self.in_app, claim, self.name, limit)
        except Exception as exc:  # noqa: BLE001 - any outage pauses watching, said once
            if not self.paused:
                log.error("uptime watch paused: %s", exc)
            self.paused = True
            return []
        if self.paused:
            log.warning("uptime watch resumed")
        self.paused = False
        return claimed

    async def check(self, client: Any, slots: asyncio.Semaphore, claimed: Claimed) -> None:
        """Check one site; confirm a failure that would open an incident on a fresh connection."""
        async with slots:
            at = utcnow()
            found = await fetch.check(
                client, claimed.url, self.timeout, claimed.expect, self.allow_private
            )
            confirmed = False
            if not found.ok and not claimed.down and claimed.failures + 1 >= self.failures:
                async with fetch.new_client(1) as fresh:
                    again = await fetch.check(
                        fresh, claimed.url, self.timeout, claimed.expect, self.allow_private
                    )
                confirmed = not again.ok
        self.results.append(Checked(claimed.site_id, at, found, confirmed))
        if confirmed:
            self.urgent.set()

    async def _flush(self) -> None:
        """Record the checks made since the last flush (dropped, with a log, if it fails)."""
        batch, self.results = self.results, []
        if not batch:
            return
        try:
            await asyncio.to_thread(self.in_app, record, batch)
        except Exception:  # noqa: BLE001 - a database blip loses checks, never invents one
            log.exception("uptime watch: could not record %d checks", len(batch))


@click.command("watch")
def watch_command() -> None:
    """Run the uptime watch alone (scale-out; `serve` runs it too)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    configure(app)
    watcher = Watcher(app)
    signal.signal(signal.SIGTERM, lambda *_: watcher.stopped.set())
    watcher.start()
    click.echo(f"Watcher {watcher.name} running; Ctrl-C to stop.")
    try:
        while not watcher.stopped.wait(1):
            pass
    except KeyboardInterrupt:
        click.echo("Stopping watcher…")
    finally:
        watcher.stop()
