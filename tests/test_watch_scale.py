"""Watchers scale out (issue 18): two real `watch` processes share the sites through the
database, each site checked by one of them per interval; one SIGKILLed, the other picks its
sites up within one interval."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import defaultdict

import pytest
import sqlalchemy as sa
from test_watch import StandInSite
from test_worker import service_env, spawn, wait_until

from supportwidget.models import Client, Site, db

from conftest import make_app, running

pytestmark = pytest.mark.slow  # real `watch` and `serve` processes, several intervals long
INTERVAL = 2  # seconds: WATCH_INTERVAL for this test
SITES = 20


def claimed_by(app) -> set[str]:
    with app.app_context():
        names = set(db.session.scalars(sa.select(Site.watch_claimed_by).distinct()))
        db.session.remove()
    return names - {None}


def test_two_watchers_share_the_sites_and_a_killed_ones_are_picked_up(
    database_url, tmp_path, smtp_server
):
    standin = StandInSite()
    app = make_app(database_url, tmp_path)
    with running(app):
        client = Client(name="Acme Shop", emails=["owner@acme.test"])
        db.session.add_all(
            Site(client=client, name=f"s{i}.test", url=f"{standin.url}s{i}") for i in range(SITES)
        )
        db.session.commit()
    env = service_env(
        database_url,
        f"sqlite:///{tmp_path / 'queue.sqlite'}",
        tmp_path,
        smtp_server,
        WATCH_INTERVAL=str(INTERVAL),
        WATCH_TIMEOUT="1",
        WATCH_ALLOW_PRIVATE="true",
    )
    watchers = [spawn(env, "watch", log=tmp_path / f"watch{n}.log") for n in range(2)]
    try:
        seen: set[str] = set()

        def some_claimed() -> bool:
            # Sites fall due together here: whichever watcher ticks first may take them all.
            seen.update(claimed_by(app))
            return bool(seen)

        def both_started() -> bool:
            logs = [(tmp_path / f"watch{n}.log") for n in range(2)]
            return all(log.exists() and " started" in log.read_text() for log in logs)

        wait_until(both_started, 90, "both watchers to start")
        wait_until(some_claimed, 90, "a watcher to claim sites")
        time.sleep(3 * INTERVAL)
        seen.update(claimed_by(app))
        names = {f"watch:{os.uname().nodename}:{w.pid}": w for w in watchers}
        # Kill a watcher that holds sites: the other must pick them up.
        victim_name = next(name for name in names if name in seen)
        victim = names[victim_name]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.time()
        time.sleep(2 * INTERVAL + 1)
        hits = standin.hits
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.send_signal(signal.SIGTERM)
                watcher.wait(10)
        standin.close()
    by_site: dict[str, list[float]] = defaultdict(list)
    for path, at in hits:
        by_site[path].append(at)
    assert len(by_site) == SITES
    # Exactly one watcher per interval: no site is fetched twice within one interval.
    gaps = [b - a for times in by_site.values() for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) > INTERVAL * 0.6, sorted(gaps)[:5]
    # Every site, the killed watcher's included, was checked again within one interval
    # (plus the claim tick and some slack on a loaded machine).
    late = {
        path: min((at for at in times if at > killed_at), default=None)
        for path, times in by_site.items()
    }
    assert all(at is not None and at - killed_at <= INTERVAL + 1.5 for at in late.values()), late
    with running(app):
        survivors = claimed_by(app)
    assert victim_name not in survivors and len(survivors) == 1


def test_serve_runs_the_watch_by_default(database_url, tmp_path, smtp_server):
    standin = StandInSite()
    app = make_app(database_url, tmp_path)
    with running(app):
        client = Client(name="Acme Shop", emails=["owner@acme.test"])
        db.session.add(Site(client=client, name="acme.test", url=f"{standin.url}home"))
        db.session.commit()
    env = service_env(
        database_url,
        f"sqlite:///{tmp_path / 'queue.sqlite'}",
        tmp_path,
        smtp_server,
        WATCH_ALLOW_PRIVATE="true",
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = spawn(env, "serve", "--port", str(port), log=tmp_path / "serve.log")
    try:
        wait_until(lambda: standin.hits, 60, "serve's watcher to check the site")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        standin.close()
    assert standin.hits[0][0] == "/home"
    assert "with uptime watch" in (tmp_path / "serve.log").read_text()
