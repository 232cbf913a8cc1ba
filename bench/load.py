"""Sustained mixed load: gunicorn + 2 workers on PostgreSQL and Redis (issue 7 §7).

    python bench/load.py [--seconds 60] [--threads 8]

Needs PostgreSQL at 127.0.0.1:5432 (db `test`) and Redis at 127.0.0.1:6379. Everything the
bench writes lives in its own PostgreSQL schema (`swbench_load`, via search_path) and Redis
db 14, both wiped before and after; the test suite uses schema `public` and db 15. Do not
run it while the test suite runs: both would measure each other.

Starts, on 127.0.0.1 only: an aiosmtpd sink process, the Vonage TLS stand-in, gunicorn with
examples/deploy/gunicorn.conf.py, two `flask --app supportwidget worker` processes, and a
bare Flask app on gunicorn with the same config whose one endpoint inserts one row into the
same PostgreSQL. Then, for `--seconds` each with the same client threads:
1. the floor: POST /insert;
2. the mix: 80% standard submissions, 1% emergencies, 19% staff reads
   (GET /api/v1/tickets with a Bearer token from `staff token`; /healthz while there is no API).
Form tokens are minted with `supportwidget.platform.tokens.form_token` and the service's SECRET_KEY
(exactly what the form page embeds), so the mix holds no form-page GETs.
After the mix the outbox is drained; lost notifications are rows not `sent`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _support import (
    STANDARD,
    Client,
    Result,
    flask_cli,
    flask_cmd,
    form_body,
    free_port,
    load_arguments,
    percentile,
    print_error_samples,
    require,
    run_in_tempdir,
    run_load,
    running,
    seed,
    service_env,
    vonage_settings,
    vonage_standin,
)

SCHEMA = "swbench_load"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DB_URL = f"{PG}?options=-csearch_path%3D{SCHEMA}"
QUEUE_URL = "redis://127.0.0.1:6379/14"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
CONF = "examples/deploy/gunicorn.conf.py"
TARGET = 0.6


def reset_stores(create: bool) -> None:
    """Drop (and optionally recreate) the bench schema and empty the bench's Redis db."""
    import redis

    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        if create:
            conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    engine.dispose()
    redis.Redis.from_url(QUEUE_URL, socket_timeout=5).flushdb()


def tests_running() -> list[str]:
    """Return the command lines of pytest processes on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "pytest" in cmdline and entry.name != str(os.getpid()):
            found.append(cmdline.strip())
    return found


def token_minter(secret: str) -> Any:
    """Return a function that makes a form token as the form page would."""
    from flask import Flask

    from supportwidget.platform import tokens

    app = Flask("bench-tokens")
    app.config["SECRET_KEY"] = secret

    def mint(site_key: str) -> str:
        with app.app_context():
            return tokens.form_token(site_key)

    return mint


def mixed_job(site_key: str, mint: Any, read_path: str, bearer: str):
    """Return the mixed-load job: 80% standard, 1% emergency, 19% reads."""

    def job(client: Client) -> tuple[str, bool, str]:
        draw = random.random()
        if draw < 0.80:
            body, headers = form_body({**STANDARD, "form_token": mint(site_key)})
            status, page = client.request("POST", f"/s/{site_key}", body, headers)
            return "standard", status == 200 and b"SUP-" in page, f"{status} {page[:300]!r}"
        if draw < 0.81:
            fields = {
                **STANDARD,
                "category": "offline",
                "offline_answer": "yes",
                "billing_consent": "y",
            }
            body, headers = form_body({**fields, "form_token": mint(site_key)})
            status, page = client.request("POST", f"/s/{site_key}/emergency", body, headers)
            return "emergency", status == 200 and b"SUP-" in page, f"{status} {page[:300]!r}"
        status, page = client.request("GET", read_path, headers={"Authorization": bearer})
        return "read", status == 200, f"{status} {page[:300]!r}"

    return job


def floor_job(client: Client) -> tuple[str, bool, str]:
    """POST the same fields to the bare floor."""
    body, headers = form_body(STANDARD)
    status, page = client.request("POST", "/insert", body, headers)
    return "insert", status == 200 and b"SUP-" in page, f"{status} {page[:200]!r}"


def outbox_counts() -> dict[str, int]:
    """Return the notification rows per status in the bench schema."""
    engine = sa.create_engine(DB_URL)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM notification GROUP BY status"))
        counts = {status: n for status, n in rows}
    engine.dispose()
    return counts


def scalar(sql: str) -> int:
    """Run one counting query in the bench schema."""
    engine = sa.create_engine(DB_URL)
    with engine.connect() as conn:
        value = conn.execute(sa.text(sql)).scalar_one()
    engine.dispose()
    return int(value)


def drain(timeout: float) -> tuple[float, dict[str, int]]:
    """Wait until no row is pending or sending; return the time it took and the counts."""
    start = time.monotonic()
    while True:
        counts = outbox_counts()
        busy = counts.get("pending", 0) + counts.get("sending", 0)
        if not busy or time.monotonic() - start > timeout:
            return time.monotonic() - start, counts
        time.sleep(1)


def choose_reads(port: int, env: dict[str, str]) -> tuple[str, str]:
    """Return the read path and Authorization header: the API when it exists, else /healthz."""
    token = flask_cli(env, "staff", "token", "staff0@agency.example").strip().splitlines()[-1]
    bearer = f"Bearer {token}"
    client = Client(port)
    status, _ = client.request("GET", "/api/v1/tickets", headers={"Authorization": bearer})
    client.close()
    return ("/api/v1/tickets", bearer) if status == 200 else ("/healthz", bearer)


def start_all(stack: ExitStack, tmp: Path, ports: dict[str, int]) -> dict[str, Any]:
    """Start the sink, the stand-in, seed, gunicorn x2 and two workers; return the context."""
    sink = [sys.executable, "bench/_floor.py", "smtp-sink", "--port", str(ports["smtp"])]
    stack.enter_context(running(sink, dict(os.environ), tmp / "sink.log", f"tcp:{ports['smtp']}"))
    standin = stack.enter_context(vonage_standin(tmp))
    env = service_env(
        tmp / "instance",
        SQLALCHEMY_DATABASE_URI=DB_URL,
        QUEUE_URL=QUEUE_URL,
        UPLOAD_FOLDER=str(tmp / "uploads"),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(ports["smtp"]),
        MAIL_DEFAULT_SENDER="support@agency.example",
        STAFF_NOTIFY_EMAILS="[]",
        EMERGENCY_REPAGE_INTERVAL="3600",
        **vonage_settings(standin),
    )
    env["REQUESTS_CA_BUNDLE"] = str(standin.ca_bundle)
    site_key = seed(env, staff=2, on_call=True)
    web = [GUNICORN, "supportwidget:create_app()", "-c", CONF, "-b", f"127.0.0.1:{ports['web']}"]
    stack.enter_context(
        running(web, env, tmp / "gunicorn.log", f"http://127.0.0.1:{ports['web']}/widget.js")
    )
    for n in (1, 2):
        log = tmp / f"worker{n}.log"
        # /healthz answers 200 only once a worker has beaten.
        ready = f"http://127.0.0.1:{ports['web']}/healthz"
        stack.enter_context(running(flask_cmd("worker"), env, log, ready))
    bare_env = {**env, "BENCH_BARE_DB_URL": DB_URL}
    bare = [GUNICORN, "_floor:bare_app()", "-c", CONF, "--pythonpath", "bench"]
    bare += ["-b", f"127.0.0.1:{ports['bare']}"]
    stack.enter_context(
        running(bare, bare_env, tmp / "bare.log", f"http://127.0.0.1:{ports['bare']}/healthz")
    )
    return {"env": env, "site_key": site_key, "standin": standin}


def measure(args: argparse.Namespace, tmp: Path) -> None:
    """Run the floor and the mix, drain, and print the figures."""
    ports = {"smtp": free_port(), "web": free_port(), "bare": free_port()}
    reset_stores(create=True)
    try:
        with ExitStack() as stack:
            ctx = start_all(stack, tmp, ports)
            read_path, bearer = choose_reads(ports["web"], ctx["env"])
            mint = token_minter(ctx["env"]["SUPPORTWIDGET_SECRET_KEY"])
            job = mixed_job(ctx["site_key"], mint, read_path, bearer)
            require(run_load(ports["bare"], args.threads, 2, floor_job), "insert", "floor")
            require(run_load(ports["web"], args.threads, 2, job), "standard", "service")
            drain(args.drain)
            before = scalar("SELECT count(*) FROM ticket")
            floor = run_load(ports["bare"], args.threads, args.seconds, floor_job)
            mix = run_load(ports["web"], args.threads, args.seconds, job)
            drained, counts = drain(args.drain)
            tickets = scalar("SELECT count(*) FROM ticket") - before
            sms = len(ctx["standin"].requests)
            stack.close()  # stop everything; the sink prints its count on the way out
        received = (tmp / "sink.log").read_text().strip().splitlines()[-1]
        report(args, floor, mix, read_path, drained, counts, tickets, sms, received)
    finally:
        reset_stores(create=False)


def kind_line(result: Result, kind: str) -> str:
    """Format one request kind of the mix."""
    lat = result.latencies.get(kind, [])
    return (
        f"  {kind:<9} {result.rate(kind):8.1f}/s  p50 {percentile(lat, 50) * 1000:7.1f} ms  "
        f"p99 {percentile(lat, 99) * 1000:7.1f} ms  ok={len(lat)} "
        f"errors={result.errors.get(kind, 0)}"
    )


def report(
    args: argparse.Namespace,
    floor: Result,
    mix: Result,
    read_path: str,
    drained: float,
    counts: dict[str, int],
    tickets: int,
    sms: int,
    received: str,
) -> None:
    """Print throughput, latency, lost notifications and the ratio to the floor."""
    all_lat = [x for lat in mix.latencies.values() for x in lat]
    base = floor.rate("insert")
    lost = sum(n for status, n in counts.items() if status != "sent")
    workers = os.cpu_count() or 1
    print(
        f"\n{args.threads} client threads, {args.seconds:.0f} s per phase; gunicorn "
        f"({CONF}, {workers * 2 + 1} workers x 4 threads) + 2 workers; PostgreSQL + Redis"
    )
    print(kind_line(floor, "insert").replace("  insert   ", "  floor: bare Flask 1-row INSERT"))
    print(
        f"mix: {mix.rate():.1f} req/s, p50 {percentile(all_lat, 50) * 1000:.1f} ms, "
        f"p99 {percentile(all_lat, 99) * 1000:.1f} ms (reads: GET {read_path})"
    )
    for kind in ("standard", "emergency", "read"):
        print(kind_line(mix, kind))
    print(
        f"tickets written during the mix: {tickets} (answered: "
        f"{mix.ok('standard') + mix.ok('emergency')})"
    )
    print(f"outbox after draining {drained:.1f} s: {counts}; lost notifications: {lost}")
    print(f"SMTP sink {received}; SMS read by the Vonage stand-in: {sms}")
    submissions = mix.rate("standard") + mix.rate("emergency")
    ratio, total_ratio = submissions / base if base else 0, mix.rate() / base if base else 0
    verdict = "meets" if ratio >= TARGET else "BELOW"
    print(
        f"submissions/s over floor: {ratio:.2f} ({verdict} the target of {TARGET}); "
        f"all requests/s over floor: {total_ratio:.2f}"
    )
    print_error_samples(floor, mix)


def main() -> None:
    """Parse arguments, refuse to race the test suite, run in a temporary folder."""
    parser = load_arguments(__doc__, seconds=60)
    parser.add_argument("--drain", type=float, default=300, help="max seconds to drain")
    parser.add_argument("--ignore-tests", action="store_true", help="run even if pytest runs")
    args = parser.parse_args()
    if not args.ignore_tests and (running_tests := tests_running()):
        sys.exit("pytest is running (it shares PostgreSQL and CPU): " + running_tests[0][:200])
    run_in_tempdir("sw-bench-load-", args, measure)


if __name__ == "__main__":
    main()
