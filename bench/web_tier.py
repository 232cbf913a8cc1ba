"""Issue 17 targets 1 and 2: the web tier beside the floor and a hand-written same-work handler.

    python bench/web_tier.py [--seconds 8] [--threads 16] [--rounds 3]

Starts, on 127.0.0.1 in a throw-away folder, each on gunicorn with
examples/deploy/gunicorn.conf.py and 2 processes:
* the floor: bench/_floor.py's bare Flask app, a one-row INSERT (SQLite WAL);
* the service: `supportwidget:create_app()`, plus one `flask worker` (SQLite, its queue,
  mail to an aiosmtpd counting sink; two staff, so each ticket queues three e-mails);
* the reference: bench/reference_handler.py on the service's own database and queue.
Then `--rounds` interleaved rounds of floor / service POST / reference POST, `--seconds`
each, `--threads` keep-alive clients (form tokens fetched beforehand from the service's
form page); every POST must answer 200 with its reference, and at the end the database must
hold one ticket per answered POST. The outbox is drained after each service and reference
phase, so each pays for its own mail.

Prints per round and summed over the rounds:
1. web-tier POSTs/s ÷ floor (target ≥ 0.2) and ÷ reference (target ≥ 0.85);
2. floor CPU per request ÷ (service web CPU + worker CPU per ticket with its e-mails), from
   /proc CPU times of the gunicorn processes and the worker while it drains that phase's
   mail (target ≥ 0.1).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from _support import (
    ROOT,
    STANDARD,
    Client,
    Result,
    cpu_seconds,
    fetch_tokens,
    flask_cmd,
    form_body,
    free_port,
    load_arguments,
    print_error_samples,
    run_in_tempdir,
    run_load,
    running,
    seed,
    sink_cmd,
    sink_env,
)
from form_submissions import drain, floor_job

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
CONF = str(ROOT / "examples/deploy/gunicorn.conf.py")
FLOOR_TARGET, REFERENCE_TARGET, CPU_TARGET = 0.2, 0.85, 0.1


def gunicorn(app: str, port: int) -> list[str]:
    """Return the command line of a 2-process gunicorn serving app (importable from bench/)."""
    # No recycling (the config's max_requests): a replaced worker would take its CPU time along.
    cmd = [GUNICORN, app, "-c", CONF, "-b", f"127.0.0.1:{port}", "--pythonpath", "bench"]
    return [*cmd, "--max-requests", "0"]


def tree(pid: int) -> list[int]:
    """Return a process and its children (gunicorn's master and workers; Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(p) for p in path.read_text().split())] if path.exists() else [pid]


def cpu(pids: list[int]) -> float:
    """Return the CPU seconds these processes have used so far."""
    return sum(cpu_seconds(pid) for pid in pids)


def post_job(site_key: str, tokens: list[str]):
    """Return a job that POSTs the form with the next prefetched token (stops when none left)."""
    lock = threading.Lock()

    def job(client: Client) -> tuple[str, bool, str] | None:
        with lock:
            if not tokens:
                return None
            token = tokens.pop()
        body, headers = form_body({**STANDARD, "form_token": token})
        status, page = client.request("POST", f"/s/{site_key}", body, headers)
        return "post", status == 200 and b"SUP-" in page, f"{status} {page[:300]!r}"

    return job


def measure(args: argparse.Namespace, tmp: Path) -> None:
    """Start the servers, run the interleaved rounds, print the ratios."""
    smtp_port, port, ref_port, floor_port = free_port(), free_port(), free_port(), free_port()
    env = {**sink_env(tmp / "instance", smtp_port), "GUNICORN_WORKERS": "2"}
    env["BENCH_BARE_DB_URL"] = f"sqlite:///{tmp / 'bare.sqlite'}"
    site_key = seed(env, staff=2)
    health = f"http://127.0.0.1:{port}/healthz"  # 200 once the worker has beaten
    with ExitStack() as stack:
        stack.enter_context(running(sink_cmd(smtp_port), env, tmp / "sink.log", f"tcp:{smtp_port}"))
        web = stack.enter_context(
            running(
                gunicorn("supportwidget:create_app()", port),
                env,
                tmp / "web.log",
                f"http://127.0.0.1:{port}/widget.js",
            )
        )
        worker = stack.enter_context(running(flask_cmd("worker"), env, tmp / "worker.log", health))
        ref = stack.enter_context(
            running(
                gunicorn("reference_handler:reference_app()", ref_port),
                env,
                tmp / "reference.log",
                f"http://127.0.0.1:{ref_port}/healthz",
            )
        )
        floor_app = stack.enter_context(
            running(
                gunicorn("_floor:bare_app()", floor_port),
                env,
                tmp / "floor.log",
                f"http://127.0.0.1:{floor_port}/healthz",
            )
        )
        web_pids, ref_pids, floor_pids = tree(web.pid), tree(ref.pid), tree(floor_app.pid)
        # Warm-up, and a first rate to size the token prefetch.
        run_load(floor_port, args.threads, 1, floor_job)
        warm, _ = fetch_tokens(port, site_key, args.threads, 100)
        warmed = run_load(port, args.threads, 2, post_job(site_key, warm))
        rate = max(warmed.rate("post"), 20)
        warm, _ = fetch_tokens(port, site_key, args.threads, 100)
        answered = warmed.ok() + run_load(ref_port, args.threads, 2, post_job(site_key, warm)).ok()
        drain(port)
        want = int(rate * 3 * args.seconds) + 2 * args.threads
        rows = []
        for n in range(1, args.rounds + 1):
            before = cpu(floor_pids)
            floor = run_load(floor_port, args.threads, args.seconds, floor_job)
            floor_cpu = (cpu(floor_pids) - before) / max(floor.ok(), 1)
            tokens, _ = fetch_tokens(port, site_key, args.threads, want)
            web_before, worker_before = cpu(web_pids), cpu_seconds(worker.pid)
            service = run_load(port, args.threads, args.seconds, post_job(site_key, tokens))
            web_cpu = (cpu(web_pids) - web_before) / max(service.ok(), 1)
            drain(port)
            worker_cpu = (cpu_seconds(worker.pid) - worker_before) / max(service.ok(), 1)
            tokens, _ = fetch_tokens(port, site_key, args.threads, want)
            before = cpu(ref_pids)
            reference = run_load(ref_port, args.threads, args.seconds, post_job(site_key, tokens))
            ref_cpu = (cpu(ref_pids) - before) / max(reference.ok(), 1)
            drain(port)
            answered += service.ok() + reference.ok()
            rows.append((floor, service, reference, floor_cpu, web_cpu, worker_cpu, ref_cpu))
            print_round(n, *rows[-1])
    filed = count_tickets(tmp / "instance" / "supportwidget.sqlite")
    verdict = "each answered POST filed one" if filed == answered else "MISMATCH"
    print(
        f"tickets in the database: {filed}; POSTs answered with a reference: {answered}: {verdict}"
    )
    print((tmp / "sink.log").read_text().strip().splitlines()[-1])
    summary(args, rows)


def count_tickets(path: Path) -> int:
    """Return how many tickets the service's database holds."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM ticket").fetchone()[0])


def print_round(
    n: int,
    floor: Result,
    service: Result,
    reference: Result,
    floor_cpu: float,
    web_cpu: float,
    worker_cpu: float,
    ref_cpu: float,
) -> None:
    """Print one round's rates and CPU per request."""
    f, s, r = floor.rate("insert"), service.rate("post"), reference.rate("post")
    print(
        f"round {n}: floor {f:7.1f}/s  service {s:6.1f}/s  reference {r:6.1f}/s  "
        f"÷floor {s / f:.3f}  ÷reference {s / r:.2f} | CPU ms: floor {floor_cpu * 1000:.2f}, "
        f"web {web_cpu * 1000:.2f} + worker {worker_cpu * 1000:.2f}, reference "
        f"{ref_cpu * 1000:.2f} | errors {floor.errors}/{service.errors}/{reference.errors}"
    )
    print_error_samples(floor, service, reference)


def summary(args: argparse.Namespace, rows: list[tuple]) -> None:
    """Print the targets from all rounds together (requests summed over time)."""
    f = sum(r[0].ok() for r in rows) / sum(r[0].elapsed for r in rows)
    s = sum(r[1].ok() for r in rows) / sum(r[1].elapsed for r in rows)
    ref = sum(r[2].ok() for r in rows) / sum(r[2].elapsed for r in rows)
    mean = [sum(r[i] for r in rows) / len(rows) for i in range(3, 7)]
    floor_cpu, web_cpu, worker_cpu, ref_cpu = mean
    cpu_ratio = floor_cpu / (web_cpu + worker_cpu)
    print(f"\n{args.rounds} rounds × {args.seconds:.0f} s, {args.threads} clients, gunicorn -w 2")
    for label, value, target in (
        ("1. web tier ÷ floor", s / f, FLOOR_TARGET),
        ("1. web tier ÷ reference", s / ref, REFERENCE_TARGET),
        ("2. floor CPU ÷ (web + worker CPU per ticket)", cpu_ratio, CPU_TARGET),
    ):
        print(f"{label:<46} {value:6.3f}  {'meets' if value >= target else 'BELOW'} ≥ {target}")
    print(
        f"   floor {f:.1f}/s, service {s:.1f}/s, reference {ref:.1f}/s; CPU per request: floor "
        f"{floor_cpu * 1000:.2f} ms, web {web_cpu * 1000:.2f} ms + worker "
        f"{worker_cpu * 1000:.2f} ms (3 e-mails), reference {ref_cpu * 1000:.2f} ms (web only)"
    )


def main() -> None:
    """Parse arguments and run the bench in a temporary folder."""
    parser = load_arguments(__doc__, seconds=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.set_defaults(threads=16)
    run_in_tempdir("sw-bench-web-tier-", parser.parse_args(), measure)


if __name__ == "__main__":
    main()
