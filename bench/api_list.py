"""Benchmark GET /api/v1/tickets (first page) with 1,000 and with 100,000 tickets.

Run: .venv/bin/python bench/api_list.py   (about a minute; prints p50s and their ratio)

The queue is read through its composite index and keyset pagination, so the first
page should cost about the same however many tickets the database holds (target: the
100,000-ticket p50 at most twice the 1,000-ticket p50).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from supportwidget import create_app
from supportwidget.models import Client, Site, Staff, Ticket, db
from supportwidget.platform.database import init_schema
from supportwidget.staff.auth import hash_token

TOKEN = "sw_bench-token-not-secret"
STATUSES = ["new"] * 5 + ["in_progress"] * 2 + ["waiting_on_client", "resolved", "closed"]


def make_app(folder: Path) -> Flask:
    """Create an app on a fresh SQLite file in `folder`, schema migrated, API registered."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "INSTANCE_PATH": str(folder / "instance"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite'}",
            "UPLOAD_FOLDER": str(folder / "uploads"),
            "QUEUE_URL": "memory://",
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        init_schema()
        clients = [Client(name=f"Client {n}", emails=[f"c{n}@example.test"]) for n in range(20)]
        sites = [
            Site(client=clients[n % 20], name=f"site{n}.test", url=f"https://site{n}.test")
            for n in range(50)
        ]
        staff = Staff(name="Bench", email="bench@agency.test", api_token_hash=hash_token(TOKEN))
        db.session.add_all([*clients, *sites, staff])
        db.session.commit()
    return app


def ticket_rows(start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Return `count` plausible ticket rows: mostly open standard requests, a few emergencies."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(start, start + count):
        created = base + timedelta(minutes=n)
        emergency = rng.random() < 0.01
        status = rng.choice(STATUSES)
        open_ = status not in ("resolved", "closed")
        sla = rng.random() < 0.5
        rows.append(
            {
                "site_id": rng.randint(1, 50),
                "kind": "emergency" if emergency else "standard",
                "category": "offline" if emergency else None,
                "subject": f"Request {n}",
                "description": "Something on the site does not work as it should.",
                "requester_name": "Requester",
                "requester_email": f"r{n}@example.test",
                "page_meta": {},
                "status": status,
                "created_at": created,
                "sla_plan_name": "Gold" if sla else None,
                "first_response_due": created + timedelta(hours=4) if sla else None,
                "resolution_due": created + timedelta(hours=16) if sla else None,
                "effective_due_at": created + timedelta(hours=rng.randint(1, 48)),
                "queue_rank": (0 if emergency else 2) if open_ else 9,
                "breach_warned": [],
                "breached": [],
            }
        )
    return rows


def fill(app: Flask, total: int, rng: random.Random) -> None:
    """Bulk-insert tickets (SQLAlchemy core executemany) until the table holds `total`."""
    with app.app_context():
        have = db.session.scalar(sa.select(sa.func.count(Ticket.id)))
        for start in range(have, total, 10_000):
            rows = ticket_rows(start, min(10_000, total - start), rng)
            db.session.execute(sa.insert(Ticket.__table__), rows)
        db.session.commit()


def p50_first_page(client: FlaskClient, runs: int) -> float:
    """Return the median latency (ms) of GET /api/v1/tickets, first page, after warming up."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timings = []
    for n in range(runs + 20):
        began = time.perf_counter()
        response = client.get("/api/v1/tickets", headers=headers)
        elapsed = time.perf_counter() - began
        assert response.status_code == 200, response.get_data(as_text=True)
        assert len(response.get_json()["tickets"]) == 50
        if n >= 20:  # the first requests warm caches and the connection pool
            timings.append(elapsed * 1000)
    return statistics.median(timings)


def main() -> None:
    """Measure both sizes on one database and print the p50s and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed requests per size")
    args = parser.parse_args()
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as folder:
        app = make_app(Path(folder))
        client = app.test_client()
        results = {}
        for size in (1_000, 100_000):
            began = time.perf_counter()
            fill(app, size, rng)
            print(f"{size:>7,} tickets inserted in {time.perf_counter() - began:.1f} s")
            results[size] = p50_first_page(client, args.runs)
            print(f"{size:>7,} tickets: p50 {results[size]:.2f} ms over {args.runs} requests")
        ratio = results[100_000] / results[1_000]
        verdict = "OK" if ratio <= 2 else "TOO SLOW"
        print(f"ratio 100,000 / 1,000 = {ratio:.2f} (target <= 2): {verdict}")
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
