"""The emergency form while anonymous requests flood another client's form with images (issue 11).

    python bench/image_flood.py [--seconds 20] [--attackers 10]

Starts, on 127.0.0.1 only and in a throw-away folder, `flask --app supportwidget serve`
(waitress + the worker in one process, SQLite, the SQLite queue, mail to an aiosmtpd sink)
with two clients: A, whose standard form is flooded, and B, whose emergency form a prober
uses (GET the form, POST it with the new token: a real emergency each time). Rate limits are
off: the flood stands for requests from many addresses. Phases, each for --seconds:
1. alone: the prober only; this is the floor the other phases are compared with;
2. the issue's flood: --attackers threads POST A's form, each request carrying five all-zero
   6320x6320 PNGs (about 155 KB each, 200 megapixels in all) and form_token=bogus;
3. the worst admitted flood: the same threads POST with a valid token and two all-zero images
   of 59 megapixels in all (just under MAX_PIXELS_PER_REQUEST), which are decoded.
Before phase 2, one worst admitted request is sent alone to measure its memory. The RSS of
the `serve` process is sampled every 20 ms from /proc.
"""

from __future__ import annotations

import argparse
import re
import struct
import threading
import time
import zlib
from pathlib import Path

from _support import (
    STANDARD,
    TOKEN_RE,
    Client,
    Result,
    flask_cli,
    flask_cmd,
    form_body,
    free_port,
    load_arguments,
    multipart_body,
    percentile,
    print_error_samples,
    run_in_tempdir,
    run_load,
    running,
    seed,
    sink_cmd,
    sink_env,
)

EMERGENCY = {**STANDARD, "category": "offline", "offline_answer": "yes", "billing_consent": "y"}
# Two images just under the default MAX_PIXELS_PER_REQUEST of 60 megapixels.
WORST_SIDES = (6320, 4400)


def zero_png(side: int) -> bytes:
    """Return an all-zero RGB PNG of side x side pixels, built without drawing a canvas."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = zlib.compress(b"\x00" * ((3 * side + 1) * side), 9)
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


class RssSampler:
    """Sample a process's resident memory every 20 ms; report the peak since the last reset."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.peak = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def now(self) -> int:
        """Return the current RSS in bytes (0 when /proc cannot tell)."""
        try:
            text = self.path.read_text()
        except OSError:
            return 0
        match = re.search(r"VmRSS:\s+(\d+) kB", text)
        return int(match.group(1)) * 1024 if match else 0

    def reset(self) -> int:
        """Start a new peak; return the RSS now."""
        self.peak = self.now()
        return self.peak

    def _run(self) -> None:
        while not self.stopped.wait(0.02):
            self.peak = max(self.peak, self.now())


def probe(port: int, site_key: str, seconds: float) -> dict[str, list[float]]:
    """GET the emergency form and POST it, in a loop; return latencies and failures by kind."""
    client, out = Client(port), {"get": [], "post": [], "failed": []}
    path = f"/s/{site_key}/emergency"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        status, page = client.request("GET", path)
        match = TOKEN_RE.search(page)
        if status != 200 or not match:
            out["failed"].append(time.monotonic() - t0)
            continue
        out["get"].append(time.monotonic() - t0)
        body, headers = form_body({**EMERGENCY, "form_token": match.group(1).decode()})
        t0 = time.monotonic()
        status, page = client.request("POST", path, body, headers)
        ok = status == 200 and b"SUP-" in page
        out["post" if ok else "failed"].append(time.monotonic() - t0)
    client.close()
    return out


def flood_job(site_key: str, body: bytes, headers: dict[str, str]):
    """Return a job that POSTs one flood request; its kind is the status it got."""

    def job(client: Client) -> tuple[str, bool, str]:
        status, page = client.request("POST", f"/s/{site_key}", body, headers)
        return f"flood {status or 'no answer'}", True, ""

    return job


def under_flood(port: int, prober: str, args: argparse.Namespace, job) -> tuple:
    """Run the prober while --attackers threads run `job`; return both outcomes."""
    flood: list[Result] = []
    attack = threading.Thread(
        target=lambda: flood.append(run_load(port, args.attackers, args.seconds, job))
    )
    attack.start()
    time.sleep(1)  # let the flood get going before measuring
    probed = probe(port, prober, args.seconds - 1)
    attack.join()
    return probed, flood[0]


def token_for(port: int, site_key: str) -> str:
    """GET a hosted form and return its token."""
    client = Client(port)
    status, page = client.request("GET", f"/s/{site_key}")
    client.close()
    match = TOKEN_RE.search(page)
    if status != 200 or not match:
        raise SystemExit(f"no form token from /s/{site_key}: {status}")
    return match.group(1).decode()


def seed_second_client(env: dict[str, str]) -> str:
    """Add client B and its site; return its site key."""
    flask_cli(env, "client", "add", "Other Client", "--email", "owner@other.example")
    out = flask_cli(
        env, "site", "add", "--client", "Other Client", "--url", "https://other.example"
    )
    return re.search(r'data-site-key="([^"]+)"', out).group(1)


def measure(args: argparse.Namespace, tmp: Path) -> None:
    """Start the service, run the phases, print latencies, ratios and memory."""
    smtp_port, port = free_port(), free_port()
    env = sink_env(tmp / "instance", smtp_port)
    flooded_key = seed(env, staff=2)
    probe_key = seed_second_client(env)
    serve = flask_cmd("serve", "--port", str(port))
    with (
        running(sink_cmd(smtp_port), env, tmp / "sink.log", f"tcp:{smtp_port}"),
        running(serve, env, tmp / "serve.log", f"http://127.0.0.1:{port}/healthz") as service,
    ):
        rss = RssSampler(service.pid)
        try:
            phases(args, port, flooded_key, probe_key, rss)
        finally:
            rss.stopped.set()


def phases(args: argparse.Namespace, port: int, flooded: str, prober: str, rss: RssSampler) -> None:
    """Run the floor, one worst request alone, and the two floods; print what they measured."""
    probe(port, prober, 2)  # warm up
    base = rss.reset()
    alone = probe(port, prober, args.seconds)
    peaks = [rss.peak]
    worst = multipart_body(
        {**STANDARD, "form_token": token_for(port, flooded)},
        *[zero_png(side) for side in WORST_SIDES],
    )
    before, t0 = rss.reset(), time.monotonic()
    status, _ = Client(port, timeout=120).request("POST", f"/s/{flooded}", *worst)
    single = (status, time.monotonic() - t0, rss.peak - before)
    issue = multipart_body({**STANDARD, "form_token": "bogus"}, *[zero_png(6320)] * 5)
    floods = []
    for body in (issue, worst):
        rss.reset()
        floods.append(under_flood(port, prober, args, flood_job(flooded, *body)))
        peaks.append(rss.peak)
    (issue_probe, issue_flood), (worst_probe, worst_flood) = floods
    report(args, alone, issue_probe, worst_probe, issue_flood, worst_flood, len(issue[0]))
    mib = 2**20
    print(
        f"serve RSS: {base / mib:.0f} MiB at rest; peak {peaks[0] / mib:.0f} MiB alone, "
        f"{peaks[1] / mib:.0f} MiB under the issue's flood, "
        f"{peaks[2] / mib:.0f} MiB under the worst admitted flood"
    )
    print(
        f"one worst admitted request alone ({sum(s * s for s in WORST_SIDES) / 1e6:.1f} MP): "
        f"status {single[0]} in {single[1]:.2f} s, +{single[2] / mib:.0f} MiB RSS at its peak"
    )


def summary(label: str, probed: dict[str, list[float]], floor: dict[str, list[float]]) -> str:
    """Format the prober's GET and POST percentiles, with p99 ratios to the floor."""
    parts = [f"{label:<34}"]
    for kind in ("get", "post"):
        lat = probed[kind]
        p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
        text = f"{kind.upper()} p50 {p50:7.1f} ms p99 {p99:7.1f} ms n={len(lat):<4}"
        if probed is not floor:
            text += f" (p99 x{p99 / (percentile(floor[kind], 99) * 1000):.1f})"
        parts.append(text)
    parts.append(f"failed={len(probed['failed'])}")
    return "  ".join(parts)


def flood_line(label: str, result: Result) -> str:
    """Format what the flood requests got: count and median time per status."""
    kinds = sorted(result.latencies)
    got = ", ".join(
        f"{k.split()[1]}: {len(result.latencies[k])} (p50 {percentile(result.latencies[k], 50):.2f}"
        " s)"
        for k in kinds
    )
    return f"{label:<34}{got}"


def report(args, alone, issue_probe, worst_probe, issue_flood, worst_flood, issue_bytes) -> None:
    """Print the prober's latencies per phase and what the flood requests got."""
    print(f"\nemergency form of another client, {args.seconds:.0f} s per phase, 127.0.0.1")
    print(summary("alone (the floor)", alone, alone))
    print(summary("issue's flood (bogus token)", issue_probe, alone))
    print(summary("worst admitted flood (valid)", worst_probe, alone))
    print(
        f"\n{args.attackers} flood threads; issue's request {issue_bytes // 1000} KB "
        "(5 x 6320x6320 zero PNGs)"
    )
    print(flood_line("issue's flood got", issue_flood))
    print(flood_line("worst admitted flood got", worst_flood))
    print_error_samples(issue_flood, worst_flood)


def main() -> None:
    """Parse arguments and run the bench in a temporary folder."""
    parser = load_arguments(__doc__, seconds=20)
    parser.add_argument("--attackers", type=int, default=10)
    run_in_tempdir("sw-bench-flood-", parser.parse_args(), measure)


if __name__ == "__main__":
    main()
