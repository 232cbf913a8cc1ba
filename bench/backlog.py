"""POST CPU with a large first-come-first-served backlog ÷ with a small one (issue 17 target 3).

    python bench/backlog.py [--requests 200] [--small 1000] [--large 100000] [--rounds 3]

In one process, no HTTP server (Flask's test client, as bench/components.py): two SQLite WAL
databases, each with one client without an SLA and two staff, one holding `--small` open
first-come tickets and one `--large`. Rounds interleave the two (so a busy moment of a
shared machine hits both alike); each round files `--requests` tickets on each through
POST /s/<key> (tokens fetched beforehand) and takes the CPU time (time.process_time) per
POST. The answer page must say the queue position, and it must be the backlog + 1 + the
tickets filed so far: the count is checked, not only timed.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _support import STANDARD, TOKEN_RE, run_in_tempdir

TARGET = 1.2
POSITION_RE = re.compile(rb"number (\d+) in the queue")


def build(tmp: Path, name: str, backlog: int) -> tuple[Any, str]:
    """Return an app on its own database holding `backlog` open FCFS tickets, and its site key."""
    import sqlalchemy as sa

    from supportwidget import create_app
    from supportwidget.models import Client, Site, Staff, Ticket, db, utcnow
    from supportwidget.platform.database import init_schema

    app = create_app(
        {
            "SECRET_KEY": "bench-secret",
            "INSTANCE_PATH": str(tmp / name),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / name}.sqlite",
            "UPLOAD_FOLDER": str(tmp / name / "uploads"),
            "QUEUE_URL": "memory://",
            "RATELIMIT_ENABLED": False,
            "MAIL_SUPPRESS_SEND": True,
            "STAFF_NOTIFY_EMAILS": [],
        }
    )
    with app.app_context():
        init_schema()
        client = Client(name="Bench Client", emails=["owner@bench.example"])
        site = Site(client=client, name="bench.example", url="https://bench.example")
        db.session.add_all([client, site])
        for n in range(2):
            db.session.add(Staff(name=f"Staff {n}", email=f"staff{n}@agency.example"))
        db.session.commit()
        now = utcnow() - timedelta(days=30)
        rows = [
            {
                "site_id": site.id,
                "subject": f"Backlog {n}",
                "description": "An older request still waiting.",
                "requester_name": "Old Requester",
                "requester_email": "old@bench.example",
                "created_at": now,
                "effective_due_at": now + timedelta(seconds=n),
            }
            for n in range(backlog)
        ]
        for start in range(0, len(rows), 10_000):
            db.session.execute(sa.insert(Ticket), rows[start : start + 10_000])
        db.session.commit()
        key = site.site_key
    return app, key


def post_cpu(app: Any, key: str, n: int, expect_first: int) -> float:
    """File n tickets through the hosted form; return the CPU seconds per POST."""
    client = app.test_client()
    path = f"/s/{key}"
    tokens = []
    for _ in range(n):
        match = TOKEN_RE.search(client.get(path).data)
        assert match, "the form page carries no token"
        tokens.append(match.group(1).decode())
    start = time.process_time()
    pages = [client.post(path, data={**STANDARD, "form_token": t}).data for t in tokens]
    spent = time.process_time() - start
    for offset, page in enumerate(pages):
        found = POSITION_RE.search(page)
        assert found, page[:400]
        assert int(found.group(1)) == expect_first + offset, (found.group(1), expect_first)
    return spent / n


def measure(args: argparse.Namespace, tmp: Path) -> None:
    """Seed both databases, interleave the rounds, print CPU per POST and the ratio."""
    sizes = {"small": args.small, "large": args.large}
    apps = {name: build(tmp, name, size) for name, size in sizes.items()}
    filed = dict.fromkeys(sizes, 0)
    costs: dict[str, list[float]] = {name: [] for name in sizes}
    for name, (app, key) in apps.items():  # warm-up, counted in the expected positions
        post_cpu(app, key, 20, sizes[name] + 1)
        filed[name] += 20
    for _ in range(args.rounds):
        for name, (app, key) in apps.items():
            costs[name].append(post_cpu(app, key, args.requests, sizes[name] + filed[name] + 1))
            filed[name] += args.requests
    small, large = (statistics.median(costs[name]) for name in sizes)
    print(f"\nPOST /s/<key> CPU, one process, SQLite WAL, {args.rounds} interleaved rounds")
    for name, cost in (("small", small), ("large", large)):
        spread = ", ".join(f"{c * 1000:.2f}" for c in costs[name])
        print(f"  {sizes[name]:>7,} open FCFS tickets: {cost * 1000:6.2f} ms/POST ({spread})")
    ratio = large / small
    verdict = "meets" if ratio <= TARGET else "ABOVE"
    print(f"ratio {sizes['large']:,} / {sizes['small']:,}: {ratio:.2f} ({verdict} <= {TARGET})")


def main() -> None:
    """Parse arguments and run in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the folder")
    args = parser.parse_args()
    run_in_tempdir("sw-bench-backlog-", args, measure)


if __name__ == "__main__":
    main()
