"""The helper processes the benches start: the bare floor app and a counting SMTP sink.

    python bench/_floor.py bare-waitress --port P --db URL   # the bare floor on waitress
    python bench/_floor.py smtp-sink --port P                # an aiosmtpd sink that counts
    python bench/_floor.py smtp-stamp --port P --out FILE    # ... and writes when each came

`bare_app()` is also a gunicorn app factory (database URL from BENCH_BARE_DB_URL).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import threading
import time
from typing import Any

HOST = "127.0.0.1"


def bare_app(url: str | None = None) -> Any:
    """Return a Flask app whose one endpoint inserts one row (the floor to compare with)."""
    import sqlalchemy as sa
    from flask import Flask, request

    url = url or os.environ["BENCH_BARE_DB_URL"]
    engine = sa.create_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite"):
        sa.event.listen(engine, "connect", _sqlite_wal)
    table = sa.Table(
        "bare_ticket",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.String(150)),
        sa.Column("description", sa.Text),
        sa.Column("email", sa.String(254)),
        sa.Column("created_at", sa.Float),
    )
    table.metadata.create_all(engine)
    app = Flask("bare")
    # What examples/deploy/gunicorn.conf.py's logging hook reads, so gunicorn serves it too.
    app.config.update(LOG_FORMAT="text", LOG_LEVEL="INFO")

    @app.post("/insert")
    def insert() -> str:
        """Insert one row from the posted form, as a ticket would be."""
        form = request.form
        with engine.begin() as conn:
            new_id = conn.execute(
                table.insert().values(
                    subject=form["subject"],
                    description=form["description"],
                    email=form["email"],
                    created_at=time.time(),
                )
            ).inserted_primary_key[0]
        return f"<p>SUP-{new_id}</p>"

    @app.get("/healthz")
    def healthz() -> str:
        """Answer 200 once the server is up."""
        return "ok"

    return app


def _sqlite_wal(dbapi_connection: sqlite3.Connection, record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class _Counter:
    """An aiosmtpd handler that only counts messages (cheap, unlike a parsing recorder)."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


class _Stamper(_Counter):
    """Count, and write one line per message: accepted at (epoch s), ticket, recipients."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = open(out, "a", buffering=1)  # noqa: SIM115 - open until the sink stops

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        accepted = time.time()
        # The Message-ID names the ticket in plain ASCII (<nROW.SUP-TICKET.tag@domain>).
        found = MESSAGE_ID_RE.search(envelope.content)
        ticket = found.group(1).decode() if found else "-"
        self.out.write(f"{accepted:.4f} {ticket} {','.join(envelope.rcpt_tos)}\n")
        return await super().handle_DATA(server, session, envelope)


MESSAGE_ID_RE = re.compile(rb"Message-ID: <n\d+\.SUP-(\d+)\.", re.IGNORECASE)


def _smtp_sink(port: int, out: str | None = None) -> None:
    """Accept and count mail until SIGTERM, then print the count."""
    from aiosmtpd.controller import Controller

    handler = _Stamper(out) if out else _Counter()
    controller = Controller(handler, hostname=HOST, port=port, ready_timeout=5.0)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"smtp sink on {port}", flush=True)
    stopped.wait()
    print(f"received {handler.count}", flush=True)
    controller.stop()


def main() -> None:
    """Run one helper process (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bare-waitress", "smtp-sink", "smtp-stamp"])
    parser.add_argument("--out")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    if args.mode in ("smtp-sink", "smtp-stamp"):
        _smtp_sink(args.port, args.out if args.mode == "smtp-stamp" else None)
        return
    from waitress import serve

    # The same waitress settings `serve` uses, so the servers match.
    serve(bare_app(args.db), host=HOST, port=args.port, threads=args.threads, channel_timeout=30)


if __name__ == "__main__":
    main()
