"""Shared bench plumbing: real service processes, a keep-alive client and load loop, stand-ins.

The bare floor app and the SMTP sink run as their own processes: see bench/_floor.py.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
HOST = "127.0.0.1"
STANDARD = {
    "subject": "Contact form sends no e-mail",
    "description": "Since yesterday the contact form says sent, but nothing arrives at all.",
    "name": "Jane Owner",
    "email": "jane@example.com",
}
TOKEN_RE = re.compile(rb'name="form_token" type="hidden" value="([^"]+)"')


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# --- service processes -----------------------------------------------------------------------


def service_env(instance: Path, **settings: str) -> dict[str, str]:
    """Return an environment configuring supportwidget the way an operator does."""
    env = {**os.environ, "SUPPORTWIDGET_INSTANCE_PATH": str(instance)}
    defaults = {"SECRET_KEY": "bench-secret", "RATELIMIT_ENABLED": "false"}
    env.update({f"SUPPORTWIDGET_{k}": v for k, v in {**defaults, **settings}.items()})
    return env


def sink_env(instance: Path, smtp_port: int) -> dict[str, str]:
    """Return a service environment whose mail goes to the counting SMTP sink on smtp_port."""
    return service_env(
        instance,
        MAIL_SERVER=HOST,
        MAIL_PORT=str(smtp_port),
        MAIL_DEFAULT_SENDER="support@agency.example",
        STAFF_NOTIFY_EMAILS="[]",
    )


def sink_cmd(smtp_port: int) -> list[str]:
    """Return the command line of the counting SMTP sink (bench/_floor.py)."""
    return [sys.executable, "bench/_floor.py", "smtp-sink", "--port", str(smtp_port)]


def flask_cli(env: dict[str, str], *args: str) -> str:
    """Run one `flask --app supportwidget` command and return its output, or exit loudly."""
    cmd = [sys.executable, "-m", "flask", "--app", "supportwidget", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def seed(env: dict[str, str], staff: int, on_call: bool = False) -> str:
    """Create the schema, one client without an SLA, its site and staff; return the site key."""
    flask_cli(env, "init-db")
    flask_cli(env, "client", "add", "Bench Client", "--email", "owner@bench.example")
    out = flask_cli(
        env, "site", "add", "--client", "Bench Client", "--url", "https://bench.example"
    )
    match = re.search(r'data-site-key="([^"]+)"', out)
    if not match:
        sys.exit(f"site add printed no site key:\n{out}")
    for n in range(staff):
        args = ["--name", f"Staff {n}", "--email", f"staff{n}@agency.example"]
        args += ["--phone", f"+4477009{n:05d}"]
        flask_cli(env, "staff", "add", *args, *(["--on-call"] if on_call else []))
    return match.group(1)


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own process group, output to a log file."""
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )


def flask_cmd(*args: str) -> list[str]:
    """Return the command line of a `flask --app supportwidget` process."""
    return [sys.executable, "-m", "flask", "--app", "supportwidget", *args]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a process group this bench started; kill it if it will not go."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


@contextmanager
def running(
    cmd: list[str], env: dict[str, str], log: Path, ready: str, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends; wait until `ready` answers.

    `ready` is a URL that must answer 200, or "tcp:PORT" that must accept a connection.
    """
    proc = spawn(cmd, env, log)
    try:
        deadline = time.monotonic() + timeout
        while not is_ready(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{cmd[:4]} did not become ready; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        stop(proc)


def is_ready(ready: str) -> bool:
    """Tell whether a URL answers 200 or a "tcp:PORT" accepts connections."""
    if ready.startswith("tcp:"):
        try:
            socket.create_connection((HOST, int(ready[4:])), timeout=2).close()
            return True
        except OSError:
            return False
    return http_status(ready) == 200


def http_status(url: str) -> int:
    """Return the status of GET url, 0 when nothing answers."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match, url
    conn = http.client.HTTPConnection(match.group(1), int(match.group(2)), timeout=5)
    try:
        conn.request("GET", match.group(3))
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


# --- HTTP client and load loop ----------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection with a timeout, reconnecting after errors."""

    def __init__(self, port: int, timeout: float = 30) -> None:
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request and return (status, body); status 0 on a connection error."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
            if response.will_close:
                self.close()
            return response.status, data
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, b""

    def close(self) -> None:
        """Close the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def form_body(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Encode a urlencoded form."""
    return urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def multipart_body(fields: dict[str, str], *images: bytes) -> tuple[bytes, dict[str, str]]:
    """Encode a multipart form with screenshot files."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    for n, image in enumerate(images):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="screenshots"; '
            f'filename="screen{n}.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        parts.append(head.encode() + image + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@dataclass
class Result:
    """What one timed phase measured, per request kind."""

    elapsed: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def ok(self, kind: str | None = None) -> int:
        """Return how many requests (of one kind) succeeded."""
        kinds = [kind] if kind else list(self.latencies)
        return sum(len(self.latencies.get(k, [])) for k in kinds)

    def rate(self, kind: str | None = None) -> float:
        """Return successful requests per second."""
        return self.ok(kind) / self.elapsed if self.elapsed else 0.0


# A job makes one request with a client and returns (kind, succeeded, detail); None = stop.
Job = Callable[[Client], tuple[str, bool, str] | None]


def run_load(port: int, threads: int, seconds: float, job: Job) -> Result:
    """Run `job` in a loop on `threads` threads for `seconds`; record latency per kind."""
    result, lock = Result(), threading.Lock()
    start = time.monotonic()
    deadline = start + seconds
    ends: list[float] = []

    def loop() -> None:
        client = Client(port)
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            outcome = job(client)
            if outcome is None:
                break
            kind, succeeded, detail = outcome
            took = time.monotonic() - t0
            with lock:
                if succeeded:
                    result.latencies.setdefault(kind, []).append(took)
                else:
                    result.errors[kind] = result.errors.get(kind, 0) + 1
                    if len(result.samples) < 5:
                        result.samples.append(f"{kind}: {detail[:300]}")
        client.close()
        with lock:
            ends.append(time.monotonic())

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 120)
    result.elapsed = max(ends, default=time.monotonic()) - start
    return result


def require(result: Result, kind: str, what: str) -> None:
    """Stop the bench when a warm-up produced no successful request of a kind."""
    if result.ok(kind) == 0:
        sys.exit(f"{what}: no successful {kind!r} request; e.g. {result.samples[:1]}")


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    """Return the nearest-rank percentile (p in 0..100) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def fetch_tokens(port: int, site_key: str, threads: int, count: int) -> tuple[list[str], float]:
    """GET the hosted form `count` times on `threads` threads; return tokens and GETs/s."""
    tokens: list[str] = []
    lock = threading.Lock()

    def job(client: Client) -> tuple[str, bool, str] | None:
        with lock:
            if len(tokens) >= count:
                return None
        status, page = client.request("GET", f"/s/{site_key}")
        match = TOKEN_RE.search(page)
        if status == 200 and match:
            with lock:
                tokens.append(match.group(1).decode())
            return "get", True, ""
        return "get", False, f"{status} {page[:200]!r}"

    result = run_load(port, threads, 600, job)
    return tokens, result.rate("get")


def make_png(target: int = 200_000) -> bytes:
    """Return a 1280x800 screenshot-like PNG of about `target` bytes (UI blocks plus noise)."""
    from PIL import Image, ImageDraw

    rng = random.Random(7)
    image = Image.new("RGB", (1280, 800), (246, 247, 249))
    draw = ImageDraw.Draw(image)
    for _ in range(60):  # panels and "text" bars, as a dashboard has
        x, y = rng.randrange(1200), rng.randrange(760)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.rectangle((x, y, x + rng.randrange(20, 300), y + rng.randrange(6, 40)), fill=colour)
    side, data = 40, b""
    while side < 800:  # a noisy photo region sized until the file reaches the target
        noisy = image.copy()
        noisy.paste(Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)), (40, 40))
        out = io.BytesIO()
        noisy.save(out, "PNG")
        data = out.getvalue()
        if len(data) >= target:
            break
        side += 10
    return data


# --- in-process stand-ins (from tests/) ---------------------------------------------------------


@contextmanager
def vonage_standin(folder: Path) -> Iterator[Any]:
    """Run the HTTPS stand-in of Vonage's SMS API (tests/vonage_standin.py) with a new CA."""
    sys.path.insert(0, str(TESTS))
    from vonage_standin import serving

    with serving(folder) as standin:
        yield standin


def vonage_settings(standin: Any) -> dict[str, str]:
    """Return the SUPPORTWIDGET_* settings that point the service at the stand-in."""
    from vonage_standin import API_KEY, API_SECRET

    return {
        "VONAGE_API_KEY": API_KEY,
        "VONAGE_API_SECRET": API_SECRET,
        "VONAGE_REST_HOST": standin.host,
    }


def load_arguments(doc: str, seconds: float) -> argparse.ArgumentParser:
    """Return the options every load bench takes: --seconds, --threads, --keep."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the folder with logs")
    return parser


def print_error_samples(*results: Result) -> None:
    """Print the first failed requests of each phase, so an error rate can be read."""
    for result in results:
        for sample in result.samples:
            print("  error sample:", sample)


def run_in_tempdir(prefix: str, args: argparse.Namespace, measure: Callable[..., None]) -> None:
    """Run `measure(args, folder)` in a throw-away folder; stop servers on SIGTERM too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so servers are stopped
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        measure(args, tmp)
    finally:
        if args.keep:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
