"""One check of a site's URL: does it answer, how, how fast.

`check` never takes longer than its timeout, whatever the site or its DNS does: the work
runs on a thread of its own and the caller stops waiting at the deadline. It refuses
loopback, private and link-local addresses unless told otherwise (every address a name
resolves to is checked, and the connection goes to the address that was checked), reads at
most MAX_BYTES of the answer, and follows redirects only within the same site.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
import time
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

MAX_BYTES = 64 * 1024  # enough to find an expected text near the top of a page
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "supportwidget-check/1 (+site check by your web agency)"
# RFC 6761 names no resolver may answer for: not worth a DNS query.
RESERVED_NAMES = (".test", ".example", ".invalid")


@dataclass(frozen=True)
class CheckResult:
    """What one check found: `ok` when the site answered below 400 (and with the text)."""

    ok: bool
    status: int | None  # the HTTP status of the last answer; None when nothing answered
    elapsed: float  # seconds
    error: str | None  # why it is not ok, in a few words
    url: str  # what was checked
    final_url: str  # where the last answer came from, after same-site redirects

    @property
    def summary(self) -> str:
        """Say what was found, for staff: '200 OK in 0.4 s', 'connection refused after 3.0 s'."""
        seconds = f"{self.elapsed:.1f} s"
        if self.status is None:
            return f"{self.error} after {seconds}"
        try:
            answer = f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:
            answer = f"HTTP {self.status}"
        return f"{answer} in {seconds}" + (f", but {self.error}" if self.error else "")

    @property
    def brief(self) -> str:
        """Say it in a few characters, for an SMS: '200 in 0.4s', 'refused 3.0s'."""
        if self.status is not None:
            return f"{self.status} in {self.elapsed:.1f}s" + (
                " but text missing" if self.error else ""
            )
        reason = (self.error or "failed").removeprefix("connection ").split(" (")[0].split(":")[0]
        return f"{reason} {self.elapsed:.1f}s"

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (to store with a ticket)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Read a result stored with as_dict."""
        values: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        return cls(**values)


class Refused(Exception):
    """A check we will not make (an address we must not reach, a URL we cannot check)."""


def check(
    url: str, timeout: float, expect: str | None = None, allow_private: bool = False
) -> CheckResult:
    """Fetch `url` once and say what answered, in at most `timeout` seconds."""
    started = time.monotonic()
    answer: queue.Queue[CheckResult] = queue.Queue(maxsize=1)
    # A daemon thread: a resolver or server that hangs past the deadline holds nobody up.
    threading.Thread(
        target=lambda: answer.put(_check_now(url, started + timeout, expect, allow_private)),
        name="site-check",
        daemon=True,
    ).start()
    try:
        return answer.get(timeout=timeout)
    except queue.Empty:
        return CheckResult(False, None, timeout, "no answer", url, url)


def _check_now(url: str, deadline: float, expect: str | None, allow_private: bool) -> CheckResult:
    """Fetch `url`, following same-site redirects, until the deadline."""
    started, current = time.monotonic(), url
    with httpx.Client(follow_redirects=False, headers={"User-Agent": USER_AGENT}) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                status, location, body = _fetch(client, current, deadline, allow_private)
            except (Refused, httpx.HTTPError, OSError) as exc:
                return CheckResult(False, None, time.monotonic() - started, why(exc), url, current)
            following = next_hop(url, current, status, location)
            if following is None:
                break
            current = following
    return answered(url, current, status, body, expect, started)


def next_hop(url: str, current: str, status: int, location: str | None) -> str | None:
    """Return where a redirect from `current` leads, if it is one to follow (same site)."""
    following = urljoin(current, location) if location and status in REDIRECTS else None
    return following if following is not None and same_site(url, following) else None


def answered(
    url: str, final_url: str, status: int, body: bytes, expect: str | None, started: float
) -> CheckResult:
    """Say what a site's last answer means: ok below 400 and with the expected text."""
    missing = expect is not None and expect not in body.decode("utf-8", "replace")
    error = f"{expect!r} not found" if missing else None
    elapsed = time.monotonic() - started
    return CheckResult(status < 400 and not missing, status, elapsed, error, url, final_url)


def _fetch(
    client: httpx.Client, url: str, deadline: float, allow_private: bool
) -> tuple[int, str | None, bytes]:
    """Return the status, Location and first MAX_BYTES of one GET, at an address we checked."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {url[:100]}")
    address = address_of(parts.hostname, parts.port, deadline, allow_private)
    pinned = httpx.URL(url).copy_with(host=address)
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    request = client.build_request(
        "GET",
        pinned,
        # identity: a compressed answer could unpack to far more than MAX_BYTES.
        headers={"Host": parts.netloc.rsplit("@", 1)[-1], "Accept-Encoding": "identity"},
        extensions={**extensions, "timeout": _timeouts(deadline)},
    )
    response = client.send(request, stream=True)
    try:
        body = b""
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= MAX_BYTES or time.monotonic() > deadline:
                break
        return response.status_code, response.headers.get("location"), body[:MAX_BYTES]
    finally:
        response.close()


def _timeouts(deadline: float) -> dict[str, float]:
    """Return httpx's per-step timeouts, none of them past the deadline."""
    left = max(deadline - time.monotonic(), 0.01)
    return {"connect": left, "read": left, "write": left, "pool": left}


def address_of(host: str, port: int | None, deadline: float, allow_private: bool) -> str:
    """Resolve a host; refuse it if any of its addresses is not public (unless allowed).

    Blocking (the system resolver): the watch's async checks run it on the loop's executor,
    as asyncio's own getaddrinfo does.
    """
    if host.lower().rstrip(".").endswith(RESERVED_NAMES):
        raise Refused(f"not checked: {host} is a reserved name that never resolves")
    if time.monotonic() > deadline:
        raise Refused("no answer")
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"name not found ({exc.strerror})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for text in addresses:
        if not allow_private and not ipaddress.ip_address(text.split("%")[0]).is_global:
            raise Refused(f"not checked: {host} is not a public address ({text})")
    return addresses[0]


def same_site(first: str, second: str) -> bool:
    """Tell whether two URLs are on the same site (host alike but for a leading 'www.')."""
    hosts = [(urlsplit(url).hostname or "").removeprefix("www.") for url in (first, second)]
    return bool(hosts[0]) and hosts[0] == hosts[1]


def why(exc: BaseException) -> str:
    """Say in a few words why a fetch failed."""
    if isinstance(exc, Refused):
        return str(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return "TLS error (certificate or handshake)"
    if "refused" in text.lower() or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"connection failed ({text[:80]})"
