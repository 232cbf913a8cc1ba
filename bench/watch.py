"""The uptime watch at scale, and how soon an outage pages (issue 18, Benchmark).

    python bench/watch.py [--sites 10000] [--interval 60] [--rounds 2] [--runs 3]

Phase 1: one real `flask --app supportwidget watch` process (SQLite WAL, or --database)
watches `--sites` sites on the stand-in server (bench/_sites.py, its own process: 92 % fast,
5 % slow (2 s), 1 % failing (503), 1 % answering without the expected text, 1 % never
answering), each due at its own moment spread over the interval, as in steady state. First
the floor: the stand-in alone, driven by a bare asyncio client (a connection per request, as
the watcher makes them), so the stand-in is shown not to be the limit. After one warm-up
round it measures `--rounds` intervals: checks/s and CPU per check of the watcher process
(/proc), lateness (each site's first request of a round at the stand-in, minus the moment it
was due) and the checks that never came (a check later than a whole interval counts as
missed). The failing sites open their emergencies during the measured rounds: that work is
in the figures. The machine's load averages are printed with the figures.

Phase 2: `flask --app supportwidget serve` (web, worker and watcher in one process) with
`--short` s checks, 3 on-call staff, the Vonage TLS stand-in; a site is switched to 503 and
the time from its first failed check (at the stand-in) to the first SMS page (at the Vonage
stand-in) is measured, `--runs` times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _support import (
    ROOT,
    cpu_seconds,
    flask_cli,
    flask_cmd,
    free_port,
    percentile,
    run_in_tempdir,
    running,
    seed,
    service_env,
    spawn,
    stop,
    vonage_settings,
    vonage_standin,
)

LATE_TARGET = 5.0  # seconds, p99
CLOCK_SLACK = 1.0  # seconds: the stand-in's clock against the database's due moments
MIX = (("hang", 0.01), ("fail", 0.01), ("wrong", 0.01), ("slow", 0.05))  # the rest: fast


def hits(port: int) -> list[tuple[str, float, int]]:
    """Take the stand-in's request log: (path, monotonic time, status)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_control/hits", timeout=30) as r:
        return [tuple(h) for h in json.loads(r.read())]


def layout(count: int) -> list[str]:
    """Return each site's kind, the mix spread evenly through the list."""
    kinds = ["fast"] * count
    step = 0
    for kind, share in MIX:
        for n in range(int(count * share)):
            kinds[(step + n * int(1 / share)) % count] = kind
        step += 1
    return kinds


def seed_sites(env: dict[str, str], port: int, kinds: list[str], interval: float) -> datetime:
    """Add the sites straight into the database, due spread over one interval from a start."""
    sys.path.insert(0, str(ROOT))
    from supportwidget import create_app
    from supportwidget.models import Client, Site, db

    app = create_app({k[14:]: v for k, v in env.items() if k.startswith("SUPPORTWIDGET_")})
    start = datetime.now(UTC) + timedelta(seconds=15)  # the watcher's start-up
    with app.app_context():
        client = db.session.scalar(db.select(Client))
        for n, kind in enumerate(kinds):
            db.session.add(
                Site(
                    client=client,
                    name=f"{kind}-{n}.bench",
                    url=f"http://127.0.0.1:{port}/{kind}/{n}",
                    watch_expect="Add to cart",
                    watch_next_at=start + timedelta(seconds=interval * n / len(kinds)),
                )
            )
        db.session.commit()
        db.session.remove()
    return start


def lateness(
    log: list[tuple[str, float, int]], start: datetime, count: int, interval: float, wall: float
) -> dict[int, list[float]]:
    """Return, per round, each site's lateness: its first request minus when it was due.

    A check is never early (a site is claimed once due), so a request belongs to the round
    whose due moment came last before it; one later than a whole interval lands in the next
    round, and its own round counts as missed (`missed`).
    """
    first: dict[tuple[int, int], float] = {}
    for path, at, _ in log:
        n = int(path.rsplit("/", 1)[1])
        since = at + wall - due(start, n, count, interval)
        key = (int((since + CLOCK_SLACK) // interval), n)
        first[key] = min(first.get(key, since), since)
    rounds: dict[int, list[float]] = defaultdict(list)
    for (round_, _), since in first.items():
        rounds[round_].append(since - round_ * interval)
    return rounds


def due(start: datetime, n: int, count: int, interval: float) -> float:
    """Return when site n was first due (epoch seconds): the sites spread over one interval."""
    return start.timestamp() + interval * n / count


def missed(
    rounds: dict[int, list[float]], start: datetime, args: argparse.Namespace, end: float
) -> int:
    """Count the measured rounds' checks that never came (due early enough to be seen)."""
    expected = sum(
        1
        for n in range(args.sites)
        for r in range(1, int(args.rounds) + 1)
        if due(start, n, args.sites, args.interval) + r * args.interval + LATE_TARGET <= end
    )
    seen = sum(len(v) for r, v in rounds.items() if 1 <= r <= args.rounds)
    return max(expected - seen, 0)


async def _one_request(port: int, n: int) -> None:
    """GET /fast/n on a connection of its own, the way the watcher does, and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /fast/%d HTTP/1.1\r\nHost: floor.bench\r\n\r\n" % n)
    await reader.readuntil(b"</html>")
    writer.close()


async def _drive(port: int, seconds: float, concurrency: int = 100) -> int:
    """Send requests from `concurrency` bare asyncio clients for `seconds`; return how many."""
    done = 0
    stop_at = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await _one_request(port, k * 1_000_000 + done)
            done += 1

    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return done


def standin_capacity(port: int, seconds: float = 5.0) -> float:
    """Return the requests/s the stand-in answers alone (bare client, no watcher): the floor."""
    done = asyncio.run(_drive(port, seconds))
    hits(port)  # forget them
    return done / seconds


def load() -> str:
    """Say the machine's load averages (1, 5, 15 min), as `uptime` does."""
    return "load " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def phase_one(args: argparse.Namespace, tmp: Path) -> None:
    """Run one watcher over many sites; print checks/s, CPU per check and lateness."""
    port = free_port()
    database = args.database or f"sqlite:///{tmp / 'watch.sqlite'}"
    env = service_env(
        tmp / "instance1",
        SQLALCHEMY_DATABASE_URI=database,
        QUEUE_URL=f"sqlite:///{tmp / 'queue1.sqlite'}",
        WATCH_INTERVAL=str(int(args.interval)),
        WATCH_ALLOW_PRIVATE="true",
        LOG_LEVEL="WARNING",
    )
    stand = spawn(
        [sys.executable, str(ROOT / "bench" / "_sites.py"), str(port)], env, tmp / "sites.log"
    )
    try:
        seed(env, staff=0)
        floor = standin_capacity(port)
        flask_cli(env, "site", "watch", "bench.example", "--off")
        kinds = layout(args.sites)
        start = seed_sites(env, port, kinds, args.interval)
        wall = time.time() - time.monotonic()
        watcher = spawn(flask_cmd("watch"), env, tmp / "watch.log")
        try:
            # Warm-up: the first round, then the measured ones.
            measured_from = start.timestamp() + args.interval
            time.sleep(max(measured_from - time.time(), 0))
            hits(port)
            load_before = load()
            cpu0, t0 = cpu_seconds(watcher.pid), time.monotonic()
            log: list[tuple[str, float, int]] = []
            for _ in range(int(args.rounds)):
                time.sleep(args.interval)
                log += hits(port)
            cpu1, t1 = cpu_seconds(watcher.pid), time.monotonic()
            load_after = load()
        finally:
            stop(watcher)
    finally:
        stop(stand)
    rounds = lateness(log, start, args.sites, args.interval, wall)
    late = [v for r, values in rounds.items() if r >= 1 for v in values]
    lost = missed(rounds, start, args, t1 + wall)
    checks = len(log)
    cpu = cpu1 - cpu0
    mix = ", ".join(f"{kind} {share:.0%}" for kind, share in MIX)
    needed = args.sites / args.interval
    per_round = ", ".join(f"round {r}: {len(v)}" for r, v in sorted(rounds.items()))
    print(
        f"\nphase 1: {args.sites} sites every {args.interval:.0f} s on one `watch` process, "
        f"{args.rounds:.0f} measured rounds after one warm-up ({mix}, rest fast); "
        f"the machine is shared with other work: {load_before} before, {load_after} after"
    )
    print(
        f"stand-in alone (floor, bare asyncio client, a connection per request): "
        f"{floor:.0f} requests/s = {floor / needed:.1f} x the {needed:.1f}/s needed"
    )
    print(
        f"checks: {checks} requests in {t1 - t0:.1f} s = {checks / (t1 - t0):.1f}/s "
        f"(needed {needed:.1f}/s: ratio {checks / (t1 - t0) / needed:.2f}; "
        f"{checks / (t1 - t0) / floor:.2f} of the stand-in's floor)"
    )
    print(
        f"watcher CPU: {cpu:.1f} s = {cpu / max(checks, 1) * 1000:.2f} ms per check "
        f"({cpu / (t1 - t0):.0%} of one core)"
    )
    print(f"sites checked per round: {per_round}; checks missed in measured rounds: {lost}")
    p50, p99 = percentile(late, 50), percentile(late, 99)
    verdict = "meets" if p99 <= LATE_TARGET and not lost else "MISSES"
    print(
        f"lateness: p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(late):.2f} s: "
        f"{verdict} the p99 target of {LATE_TARGET:.0f} s (every check made)"
    )


def phase_two(args: argparse.Namespace, tmp: Path) -> None:
    """Time from a site's first failed check to the first SMS page, on `serve`."""
    port, web = free_port(), free_port()
    stand_env = service_env(tmp / "instance2")
    stand = spawn(
        [sys.executable, str(ROOT / "bench" / "_sites.py"), str(port)],
        stand_env,
        tmp / "sites2.log",
    )
    with vonage_standin(tmp) as vonage:
        env = service_env(
            tmp / "instance2",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp / 'serve.sqlite'}",
            QUEUE_URL=f"sqlite:///{tmp / 'queue2.sqlite'}",
            MAIL_SUPPRESS_SEND="true",
            STAFF_NOTIFY_EMAILS="[]",
            **vonage_settings(vonage),
            WATCH_INTERVAL=str(int(args.short)),
            WATCH_ALLOW_PRIVATE="true",
            SCHEDULER_SECONDS="1",
        )
        env["REQUESTS_CA_BUNDLE"] = str(vonage.ca_bundle)
        try:
            seed(env, staff=3, on_call=True)
            flask_cli(env, "site", "watch", "bench.example", "--off")
            for n in range(args.runs):
                url = f"http://127.0.0.1:{port}/flip/{n}"
                flask_cli(
                    env,
                    "site",
                    "add",
                    "--client",
                    "Bench Client",
                    "--url",
                    url,
                    "--name",
                    f"flip{n}.bench",
                )
            for n in range(20):
                url = f"http://127.0.0.1:{port}/fast/{n}"
                flask_cli(
                    env,
                    "site",
                    "add",
                    "--client",
                    "Bench Client",
                    "--url",
                    url,
                    "--name",
                    f"fast{n}.bench",
                )
            results = []
            with running(
                flask_cmd("serve", "--port", str(web)), env, tmp / "serve.log", f"tcp:{web}"
            ):
                time.sleep(3 * args.short)  # every site checked a few times: steady state
                for n in range(args.runs):
                    results.append(one_outage(port, n, vonage, args.short))
        finally:
            stop(stand)
    target = 2 * args.short + 1
    print(
        f"\nphase 2: `serve` (web + worker + watcher), checks every {args.short:.0f} s, "
        "WATCH_FAILURES 3 + a confirming check, 3 on-call staff, Vonage SDK -> TLS stand-in"
    )
    print(f"first failed check -> first SMS page (s, per run): {[round(r, 2) for r in results]}")
    worst = max(results)
    verdict = "meets" if worst <= target else "MISSES"
    print(f"worst {worst:.2f} s: {verdict} the target of 2 x interval + 1 s = {target:.0f} s")


def one_outage(port: int, n: int, vonage: object, interval: float) -> float:
    """Switch a site to 503; return seconds from its first failed check to the first page."""
    hits(port)
    sent = len(vonage.requests)  # type: ignore[attr-defined]
    urllib.request.urlopen(f"http://127.0.0.1:{port}/_control/down/{n}", timeout=5).read()
    deadline = time.monotonic() + 10 * interval + 30
    log: list[tuple[str, float, int]] = []
    while time.monotonic() < deadline:
        log += hits(port)
        with vonage.lock:  # type: ignore[attr-defined]
            pages = [
                r["at"]
                for r in vonage.requests[sent:]  # type: ignore[attr-defined]
                if "EMERGENCY" in (r["text"] or "") and f"flip{n}.bench" in r["text"]
            ]
        if pages:
            failed = [at for path, at, status in log if path == f"/flip/{n}" and status == 503]
            return min(pages) - min(failed)
        time.sleep(0.05)
    sys.exit(f"no page within {10 * interval + 30:.0f} s of switching flip/{n} off")


def measure(args: argparse.Namespace, tmp: Path) -> None:
    """Run both phases."""
    if not args.skip_scale:
        phase_one(args, tmp)
    phase_two(args, tmp)


def main() -> None:
    """Parse arguments and run the bench in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60)
    parser.add_argument("--rounds", type=float, default=2)
    parser.add_argument("--short", type=float, default=2, help="phase 2 interval (s)")
    parser.add_argument("--runs", type=int, default=3, help="phase 2 outages")
    parser.add_argument("--database", help="a database URL instead of a SQLite file")
    parser.add_argument("--skip-scale", action="store_true", help="phase 2 only")
    parser.add_argument("--keep", action="store_true", help="keep the folder with logs")
    args = parser.parse_args()
    run_in_tempdir("sw-bench-watch-", args, measure)


if __name__ == "__main__":
    main()
