"""Hosted-form submissions per second on `serve` beside a bare Flask one-row INSERT (issue 2 §7).

    python bench/form_submissions.py [--seconds 10] [--threads 8]

Starts, on 127.0.0.1 only and in a throw-away folder:
* `flask --app supportwidget serve` (waitress + the worker in one process) on the embedded
  defaults: SQLite in WAL mode, the SQLite-backed queue, mail to an aiosmtpd sink process;
  two staff, so each ticket queues three e-mails; rate limits off;
* a bare Flask app on the same waitress settings whose one endpoint inserts one row into a
  SQLite WAL database: the floor.
Then, each for a fixed time with the same number of client threads (keep-alive connections):
1. the floor: POST /insert with the same form fields;
2. the service, GET the form then POST it (a submission counts once; the GET is paid);
3. the service, POST only, tokens fetched beforehand by GET (the fair comparison);
4. as 3, with one ~200 KB PNG screenshot each.
The outbox is drained between phases, so each phase pays for its own mail only.
Beside the rates it prints the CPU each server process spent per request (from /proc):
`serve` is one Python process, so its requests and its worker share one core's worth
of interpreter time, and the ratio cannot exceed floor CPU / service CPU per submission.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from _support import (
    STANDARD,
    TOKEN_RE,
    Client,
    Result,
    cpu_seconds,
    fetch_tokens,
    flask_cmd,
    form_body,
    free_port,
    load_arguments,
    make_png,
    multipart_body,
    percentile,
    print_error_samples,
    require,
    run_in_tempdir,
    run_load,
    running,
    seed,
    sink_cmd,
    sink_env,
)

TARGET = 0.6


def line(label: str, result: Result, kind: str, floor: float | None = None) -> str:
    """Format one phase: rate, latency percentiles, errors, ratio to the floor."""
    rate = result.rate(kind)
    lat = result.latencies.get(kind, [])
    text = (
        f"{label:<58} {rate:8.1f}/s  p50 {percentile(lat, 50) * 1000:6.1f} ms"
        f"  p99 {percentile(lat, 99) * 1000:6.1f} ms  n={len(lat)} errors={result.errors}"
        f"  window={result.elapsed:.1f}s"
    )
    if floor:
        text += f"  ratio {rate / floor:.2f}"
    return text


def drain(port: int, timeout: float = 180) -> float:
    """Wait until the service reports no pending notifications; return how long it took."""
    start, client = time.monotonic(), Client(port)
    try:
        while time.monotonic() - start < timeout:
            status, body = client.request("GET", "/healthz")
            if body and json.loads(body).get("pending_notifications") == 0:
                return time.monotonic() - start
            time.sleep(0.5)
    finally:
        client.close()
    sys.exit(f"the outbox did not drain within {timeout} s")


def post_job(site_key: str, tokens: list[str], png: bytes | None):
    """Return a job that POSTs the form with the next prefetched token (stops when none left)."""
    lock = threading.Lock()

    def job(client: Client) -> tuple[str, bool, str] | None:
        with lock:
            if not tokens:
                return None
            token = tokens.pop()
        fields = {**STANDARD, "form_token": token}
        body, headers = multipart_body(fields, png) if png else form_body(fields)
        status, page = client.request("POST", f"/s/{site_key}", body, headers)
        return "post", status == 200 and b"SUP-" in page, f"{status} {page[:300]!r}"

    return job


def pair_job(site_key: str):
    """Return a job that GETs the form and POSTs it: one submission as a browser makes it."""

    def job(client: Client) -> tuple[str, bool, str]:
        status, page = client.request("GET", f"/s/{site_key}")
        match = TOKEN_RE.search(page)
        if status != 200 or not match:
            return "pair", False, f"GET {status}"
        body, headers = form_body({**STANDARD, "form_token": match.group(1).decode()})
        status, page = client.request("POST", f"/s/{site_key}", body, headers)
        return "pair", status == 200 and b"SUP-" in page, f"{status} {page[:300]!r}"

    return job


def floor_job(client: Client) -> tuple[str, bool, str]:
    """POST the same fields to the bare floor."""
    body, headers = form_body(STANDARD)
    status, page = client.request("POST", "/insert", body, headers)
    return "insert", status == 200 and b"SUP-" in page, f"{status} {page[:200]!r}"


def measure(args: argparse.Namespace, tmp: Path) -> None:
    """Start both servers, run the four phases, print the rates and ratios."""
    smtp_port, port, bare_port = free_port(), free_port(), free_port()
    env = sink_env(tmp / "instance", smtp_port)
    site_key = seed(env, staff=2)
    png = make_png()
    sink = sink_cmd(smtp_port)
    bare = [sys.executable, "bench/_floor.py", "bare-waitress", "--port", str(bare_port)]
    bare += ["--db", f"sqlite:///{tmp / 'bare.sqlite'}"]
    serve = flask_cmd("serve", "--port", str(port))
    with (
        running(sink, env, tmp / "sink.log", f"tcp:{smtp_port}"),
        running(serve, env, tmp / "serve.log", f"http://127.0.0.1:{port}/healthz") as service,
        running(bare, env, tmp / "bare.log", f"http://127.0.0.1:{bare_port}/healthz") as floor_app,
    ):
        require(run_load(bare_port, args.threads, 1, floor_job), "insert", "floor")
        require(run_load(port, args.threads, 1, pair_job(site_key)), "pair", "service")
        drain(port)
        before = cpu_seconds(floor_app.pid)
        floor = run_load(bare_port, args.threads, args.seconds, floor_job)
        floor_cpu = (cpu_seconds(floor_app.pid) - before) / max(floor.ok(), 1)
        pairs = run_load(port, args.threads, args.seconds, pair_job(site_key))
        drained_pairs = drain(port)
        # Enough tokens for POSTs at up to 3x the pair rate; a thread that runs out stops,
        # and the rate is taken over the window actually used.
        want = int(pairs.rate("pair") * 3 * args.seconds) + 2 * args.threads
        tokens, get_rate = fetch_tokens(port, site_key, args.threads, want)
        before = cpu_seconds(service.pid)
        plain = run_load(port, args.threads, args.seconds, post_job(site_key, tokens, None))
        in_window = cpu_seconds(service.pid)
        drained_plain = drain(port)
        per_ticket = (cpu_seconds(service.pid) - before) / max(plain.ok(), 1)
        window_cpu = (in_window - before) / max(plain.ok(), 1)
        shot_tokens, _ = fetch_tokens(port, site_key, args.threads, want // 2)
        shots = run_load(port, args.threads, args.seconds, post_job(site_key, shot_tokens, png))
        drained_shots = drain(port)
    report(args, floor, pairs, plain, shots, get_rate, len(png))
    print(
        f"outbox drain after phase: pairs {drained_pairs:.1f}s, plain {drained_plain:.1f}s, "
        f"screenshot {drained_shots:.1f}s (3 e-mails per ticket, SMTP sink)"
    )
    print(
        f"CPU per request: floor {floor_cpu * 1000:.2f} ms; serve {window_cpu * 1000:.2f} ms per "
        f"POST in its window, {per_ticket * 1000:.2f} ms per ticket once its 3 e-mails are sent "
        f"-> CPU ratios {floor_cpu / window_cpu:.2f} and {floor_cpu / per_ticket:.2f}"
    )
    print((tmp / "sink.log").read_text().strip().splitlines()[-1])


def report(
    args: argparse.Namespace,
    floor: Result,
    pairs: Result,
    plain: Result,
    shots: Result,
    get_rate: float,
    png_bytes: int,
) -> None:
    """Print the phases, the ratios to the floor and the verdict."""
    base = floor.rate("insert")
    print(f"\n{args.threads} client threads, {args.seconds:.0f} s per phase, 127.0.0.1, 2 staff")
    print(line("bare floor: Flask + waitress, 1-row INSERT, SQLite WAL", floor, "insert"))
    print(line("service: GET form + POST (GET counted in the time)", pairs, "pair", base))
    print(f"{'service: GET form alone (token prefetch)':<58} {get_rate:8.1f}/s")
    print(line("service: POST, token fetched beforehand, no screenshot", plain, "post", base))
    label = f"service: POST, token beforehand, 1 PNG ({png_bytes // 1000} KB)"
    print(line(label, shots, "post", base))
    ratio = plain.rate("post") / base if base else 0.0
    verdict = "meets" if ratio >= TARGET else "BELOW"
    print(f"ratio without screenshot {ratio:.2f}: {verdict} the target of {TARGET}")
    print_error_samples(floor, pairs, plain, shots)


def main() -> None:
    """Parse arguments and run the bench in a temporary folder."""
    args = load_arguments(__doc__, seconds=10).parse_args()
    run_in_tempdir("sw-bench-forms-", args, measure)


if __name__ == "__main__":
    main()
