"""One uptime check of a site, asynchronously: thousands run at once on one event loop.

The same rules as probe.py's check for an offline emergency: a deadline for everything
(DNS included), loopback and private addresses refused unless allowed, the connection made
to the address that was checked, at most MAX_BYTES read, redirects followed within the site
(MAX_REDIRECTS). Besides, it reads the TLS certificate's days left and a fingerprint of the
page's content (hacked signals).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import re
import ssl
import textwrap
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from supportwidget.watch.probe import (
    MAX_BYTES,
    MAX_REDIRECTS,
    USER_AGENT,
    CheckResult,
    Refused,
    address_of,
    answered,
    next_hop,
    why,
)

TAGS = re.compile(rb"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)
WORDS = re.compile(rb"\w+")
SKETCH = 8  # hashes kept per fingerprint (8 hex digits each)


@dataclass(frozen=True)
class Found:
    """What one watch check found: the probe's result plus certificate and content."""

    result: CheckResult
    tls_days: int | None  # days until the certificate expires (https only)
    fingerprint: str | None  # a sketch of the page's words (fingerprint())
    text_missing: bool  # it answered below 400, but without the expected text
    tls_expires: datetime | None = None  # the certificate's notAfter (tells one from another)

    @property
    def ok(self) -> bool:
        return self.result.ok


def new_client(max_connections: int = 1000) -> httpx.AsyncClient:
    """Return an async client for many checks: a connection each, no redirects.

    No keep-alive: a site comes round again only after its interval, long after an idle
    connection would have expired; and connections go to the checked address, so a kept one
    could serve another site on the same server (its certificate, its answer). Idle
    connections would only lengthen the pool's list, which it walks on every request.
    """
    return httpx.AsyncClient(
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        timeout=httpx.Timeout(10.0),
    )


async def check(
    client: httpx.AsyncClient,
    url: str,
    timeout: float,
    expect: str | None = None,
    allow_private: bool = False,
) -> Found:
    """Fetch `url` once through `client` and say what answered, in at most `timeout` s."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            return await _check_now(client, url, started, expect, allow_private)
    except TimeoutError:
        return Found(CheckResult(False, None, timeout, "no answer", url, url), None, None, False)


async def _check_now(
    client: httpx.AsyncClient, url: str, started: float, expect: str | None, allow_private: bool
) -> Found:
    """Fetch `url`, following same-site redirects."""
    current, expires = url, None
    for _ in range(MAX_REDIRECTS + 1):
        try:
            status, location, body, expires = await _fetch(client, current, allow_private)
        except (Refused, httpx.HTTPError, OSError) as exc:
            failed = CheckResult(False, None, time.monotonic() - started, why(exc), url, current)
            return Found(failed, None, None, False)
        following = next_hop(url, current, status, location)
        if following is None:
            break
        current = following
    result = answered(url, current, status, body, expect, started)
    days = None if expires is None else int((expires.timestamp() - time.time()) // 86400)
    text_missing = not result.ok and status < 400
    return Found(result, days, fingerprint(body), text_missing, expires)


async def _fetch(
    client: httpx.AsyncClient, url: str, allow_private: bool
) -> tuple[int, str | None, bytes, datetime | None]:
    """Return the status, Location, first MAX_BYTES and TLS certificate expiry of one GET."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {url[:100]}")
    address = await asyncio.get_running_loop().run_in_executor(
        None, address_of, parts.hostname, parts.port, math.inf, allow_private
    )
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    request = client.build_request(
        "GET",
        httpx.URL(url).copy_with(host=address),
        headers={"Host": parts.netloc.rsplit("@", 1)[-1]},
        extensions=extensions,
    )
    response = await client.send(request, stream=True)
    try:
        expires = tls_expiry(response) if parts.scheme == "https" else None
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) >= MAX_BYTES:
                break
        return (
            response.status_code,
            response.headers.get("location"),
            bytes(body[:MAX_BYTES]),
            expires,
        )
    finally:
        await response.aclose()


def tls_expiry(response: httpx.Response) -> datetime | None:
    """Return when the peer's certificate expires (UTC), if it can be read."""
    stream = response.extensions.get("network_stream")
    tls = stream.get_extra_info("ssl_object") if stream is not None else None
    if not isinstance(tls, ssl.SSLObject | ssl.SSLSocket):
        return None
    cert = tls.getpeercert()
    if not cert or "notAfter" not in cert:
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)


def fingerprint(body: bytes) -> str | None:
    """Return a sketch of a page's words (the SKETCH least hashes of its 3-word runs).

    Two sketches tell how much of the text two pages share (`similarity`); a few words
    changed (a date, a price) keep most of it, a defaced page keeps none.
    """
    words = WORDS.findall(TAGS.sub(b" ", body).lower())
    if not words:
        return None
    runs = {b" ".join(words[i : i + 3]) for i in range(max(len(words) - 2, 1))}
    least = heapq.nsmallest(SKETCH, {zlib.crc32(run) for run in runs})
    return "".join(f"{value:08x}" for value in least)


def similarity(first: str, second: str) -> float:
    """Return the share of text two fingerprints have in common, 0.0 to 1.0."""
    a, b = (set(textwrap.wrap(f, 8)) for f in (first, second))
    least = set(heapq.nsmallest(SKETCH, a | b, key=lambda h: int(h, 16)))
    return len(least & a & b) / max(len(least), 1)
