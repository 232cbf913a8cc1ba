"""The site check (watch/probe.py) against real local HTTP servers: a fast one, a refusing port,
one that never answers, one that trickles, redirects, and addresses it must not reach."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from supportwidget.watch import probe
from supportwidget.watch.probe import MAX_BYTES, CheckResult, check


class _Site(BaseHTTPRequestHandler):
    """A small site: / answers, /moved and /away redirect, /big is large, /drip trickles."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    def do_GET(self) -> None:
        if self.path == "/moved":
            self._redirect(f"http://{self.headers['Host']}/welcome")
        elif self.path == "/away":
            self._redirect("http://example.org/")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/big":
            self._answer(200, b"x" * MAX_BYTES + b"FOOTER")
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        elif self.path == "/broken":
            self._answer(503, b"maintenance")
        else:
            self._answer(200, b"<h1>Welcome to Acme</h1>" + self.headers["Host"].encode())

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the check read what it needed and hung up


@pytest.fixture
def site_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A server that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


def refusing_url() -> str:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe_socket.getsockname()[1]}/"


def test_a_site_that_answers(site_url):
    result = check(site_url + "/", timeout=3, expect="Welcome", allow_private=True)
    assert (result.ok, result.status, result.error) == (True, 200, None)
    assert result.elapsed < 1 and result.summary.startswith("200 OK in 0.")
    assert result.brief.startswith("200 in 0.")


def test_the_request_goes_to_the_checked_address_under_the_site_s_own_name(site_url):
    named = site_url.replace("127.0.0.1", "localhost")
    result = check(named + "/", timeout=3, expect="localhost:", allow_private=True)
    assert result.ok  # the page echoes the Host header it was asked for


def test_a_refusing_port_is_down_at_once():
    result = check(refusing_url(), timeout=3, allow_private=True)
    assert (result.ok, result.status, result.error) == (False, None, "connection refused")
    assert result.elapsed < 1
    assert result.summary.startswith("connection refused after 0.")
    assert result.brief.startswith("refused 0.")


def test_a_server_that_never_answers_costs_the_timeout_and_no_more(hanging_url):
    started = time.monotonic()
    result = check(hanging_url, timeout=1, allow_private=True)
    took = time.monotonic() - started
    assert (result.ok, result.error) == (False, "no answer")
    assert 0.9 <= took < 1.3
    assert result.summary == "no answer after 1.0 s"


def test_a_trickling_answer_is_cut_at_the_deadline(site_url):
    started = time.monotonic()
    result = check(site_url + "/drip", timeout=1, allow_private=True)
    assert time.monotonic() - started < 1.3
    assert result.status in (None, 200)


def test_an_error_status_is_not_ok(site_url):
    result = check(site_url + "/broken", timeout=3, allow_private=True)
    assert (result.ok, result.status) == (False, 503)
    assert result.summary.startswith("503 Service Unavailable in ")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost:9/", "http://[::1]:9/"])
def test_loopback_and_private_addresses_are_not_checked_unless_allowed(url):
    result = check(url, timeout=3)
    assert not result.ok and result.status is None
    assert result.error.startswith("not checked:") and "not a public address" in result.error


def test_reserved_names_are_not_looked_up():
    result = check("https://acme.test/", timeout=3, allow_private=True)
    assert result.error == "not checked: acme.test is a reserved name that never resolves"


def test_redirects_are_followed_within_the_site_only(site_url):
    moved = check(site_url + "/moved", timeout=3, expect="Welcome", allow_private=True)
    assert moved.ok and moved.final_url == site_url + "/welcome"
    away = check(site_url + "/away", timeout=3, allow_private=True)
    assert (away.status, away.final_url) == (301, site_url + "/away")  # example.org not fetched
    loop = check(site_url + "/loop", timeout=3, allow_private=True)
    assert loop.status == 301  # gave up after MAX_REDIRECTS


def test_no_more_than_max_bytes_is_read(site_url):
    assert check(site_url + "/big", timeout=3, expect="xxxx", allow_private=True).ok
    capped = check(site_url + "/big", timeout=3, expect="FOOTER", allow_private=True)
    assert not capped.ok and capped.error == "'FOOTER' not found"


def test_a_result_survives_storage_as_json(site_url):
    result = check(site_url + "/", timeout=3, allow_private=True)
    assert CheckResult.from_dict(result.as_dict()) == result


def test_same_site_allows_www_and_nothing_else():
    assert probe.same_site("https://acme.example/", "https://www.acme.example/shop")
    assert not probe.same_site("https://acme.example/", "https://acme.example.evil.test/")
