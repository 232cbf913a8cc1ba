"""Hostile input: the work an anonymous request can cause is bounded (issue 11 §1)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from PIL import Image

from supportwidget import create_app
from supportwidget.models import Attachment, Ticket, db
from supportwidget.platform import screenshots

from conftest import form_token, standard_fields

MIB = 1024 * 1024


class CountingStream(io.RawIOBase):
    """A request body of `size` bytes that records how much of it the service read."""

    def __init__(self, size: int) -> None:
        self.size, self.served = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.served

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # The test client measures the body with seek/tell; the service must not read it.
        self.served = {io.SEEK_SET: 0, io.SEEK_CUR: self.served, io.SEEK_END: self.size}[
            whence
        ] + offset
        return self.served

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.served)
        buffer[:n] = b"x" * n
        self.served += n
        return n


def huge_post(client, path, size, content_type, **headers):
    """POST a body of `size` bytes; return the response and how many bytes were read."""
    body = CountingStream(size)
    response = client.post(
        path,
        input_stream=body,
        content_length=size,
        content_type=content_type,
        headers=headers,
    )
    return response, body.served


def png(size, mode="RGB", truncated=False):
    """Return a PNG of `size`; a truncated one has a valid header but cannot be decoded."""
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG")
    data = out.getvalue()
    return data[: len(data) // 2] if truncated else data


def test_max_content_length_is_64_mib_unless_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPPORTWIDGET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SUPPORTWIDGET_SECRET_KEY", "x")
    assert create_app().config["MAX_CONTENT_LENGTH"] == 64 * MIB
    monkeypatch.setenv("SUPPORTWIDGET_MAX_CONTENT_LENGTH", "1000")
    assert create_app().config["MAX_CONTENT_LENGTH"] == 1000


def test_an_oversized_form_post_gets_a_translated_413_before_its_body_is_read(client, site):
    response, served = huge_post(
        client,
        f"/s/{site.site_key}/emergency",
        65 * MIB,
        "multipart/form-data; boundary=x",
        **{"Accept-Language": "fr"},
    )
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "trop volumineu" in text and "64 Mo" in text
    assert served == 0
    # Shown inside the widget's frame on the client's site, like the form itself.
    assert "frame-ancestors *" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/dashboard/login", "application/x-www-form-urlencoded"),
        ("/api/v1/tickets", "application/json"),
        ("/webhooks/vonage/inbound", "application/json"),
    ],
)
def test_every_entry_point_refuses_a_body_over_max_content_length_unread(
    client, site, path, content_type
):
    response, served = huge_post(client, path, 65 * MIB, content_type)
    assert response.status_code == 413
    assert served == 0


@pytest.mark.parametrize("method", ["post", "get"])
def test_webhooks_refuse_a_large_body_before_parsing_it(client, site, method):
    body = json.dumps({"text": "ACK", "padding": "x" * 100_000}).encode()
    response = getattr(client, method)(
        "/webhooks/vonage/inbound", data=body, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.is_json and "64 KiB" in response.json["message"]


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=x", "text/plain", "application/xml"]
)
@pytest.mark.parametrize("path", ["/webhooks/vonage/inbound", "/webhooks/vonage/status"])
def test_webhooks_refuse_bodies_that_are_not_a_form_or_json(client, site, path, content_type):
    body = b"--x\r\nContent-Disposition: form-data; name=text\r\n\r\nACK\r\n--x--\r\n"
    response = client.post(path, data=body, content_type=content_type)
    assert response.status_code == 415
    assert response.is_json and "application/json" in response.json["message"]


def file_form(client, site, files, token=None, **fields):
    path = f"/s/{site.site_key}"
    data = standard_fields(**fields)
    data["form_token"] = token or form_token(client, path)
    data["screenshots"] = [(io.BytesIO(raw), name) for name, raw in files]
    return client.post(path, data=data, content_type="multipart/form-data")


@pytest.mark.parametrize(
    "token, fields, status",
    [("bogus", {}, 400), (None, {"subject": ""}, 422)],
    ids=["bogus token", "missing subject"],
)
def test_images_are_not_decoded_until_the_token_and_the_text_are_valid(
    client, site, token, fields, status
):
    # Its header reads fine; decoding it would fail and say so in the page.
    broken = png((64, 64), truncated=True)
    response = file_form(client, site, [("broken.png", broken)], token=token, **fields)
    assert response.status_code == status
    assert "broken.png is not a readable" not in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0


def test_an_undecodable_image_with_a_valid_request_is_still_refused_by_name(client, site):
    response = file_form(client, site, [("broken.png", png((64, 64), truncated=True))])
    assert response.status_code == 422
    assert "broken.png is not a readable PNG" in response.get_data(as_text=True)


def zero_png(side: int) -> bytes:
    """Return an all-zero greyscale PNG of side × side pixels, built without decoding a canvas."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = zlib.compress(b"\x00" * ((side + 1) * side), 9)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def test_the_issues_flood_request_is_refused_from_the_headers_naming_the_limit(client, site):
    # Five all-zero 6320 × 6320 PNGs (155 KB each): 200 megapixels to decode.
    flood = zero_png(6320)
    response = file_form(client, site, [(f"zero{n}.png", flood) for n in range(5)])
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "60 megapixels" in text
    # The first image fits and is kept for the next try; each one after it would take the
    # request over the limit and is named as refused.
    assert "zero0.png was not accepted" not in text and "Remove zero0.png" in text
    assert all(f"zero{n}.png was not accepted" in text for n in (1, 2, 3, 4))


@pytest.fixture
def small_budget(app):
    app.config["MAX_PIXELS_PER_REQUEST"] = 1_000_000


def test_pixels_are_counted_over_all_images_of_a_request(client, site, small_budget):
    fits, too_many = png((800, 800)), png((800, 800), truncated=True)
    response = file_form(client, site, [("one.png", fits), ("two.png", too_many)])
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "two.png" in text and "1 megapixels" in text
    assert "not a readable" not in text  # refused from its header, never decoded
    ok = file_form(client, site, [("one.png", fits)])
    assert ok.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 1


def test_with_every_decoding_slot_taken_the_requester_is_told_to_retry_text_kept(
    client, site, monkeypatch
):
    monkeypatch.setattr(screenshots, "DECODE_WAIT", 0.2)
    path = f"/s/{site.site_key}"
    token = form_token(client, path)
    files = [("shot.png", png((64, 64)))]
    description = "Checkout <fails> since 9:00 for every customer."
    # Two other requests are decoding images in this process right now.
    with screenshots.decoder.slot(1, 2), screenshots.decoder.slot(1, 2):
        busy = file_form(client, site, files, token=token, description=description)
    text = busy.get_data(as_text=True)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "60"
    assert "busy" in text and "Checkout &lt;fails&gt; since 9:00 for every customer." in text
    assert "attach them again" in text
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    again = file_form(client, site, files, token=token, description=description)
    assert again.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 1


def test_with_large_images_queued_to_the_limit_the_next_request_is_told_at_once(app, client, site):
    # A flood of the largest requests fills the queue: waiting would tie up a server thread.
    queue_full = screenshots.QUEUED_REQUESTS * app.config["MAX_PIXELS_PER_REQUEST"]
    with screenshots.decoder.slot(queue_full, queue_full):
        busy = file_form(client, site, [("shot.png", png((64, 64)))])
    assert busy.status_code == 503 and "busy" in busy.get_data(as_text=True)
    # Small screenshots queue behind each other: eight at once all get through.
    path = f"/s/{site.site_key}"
    tokens = [form_token(client, path) for _ in range(8)]

    def post(token):
        screenshot = [("s.png", png((640, 400)))]
        return file_form(app.test_client(), site, screenshot, token=token).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, tokens))
    assert statuses == [200] * 8


def test_mail_in_screenshots_get_the_same_pixel_budget(runner, site, small_budget):
    from test_mailin import mail, pipe

    msg = mail("Acme Owner <owner@acme.test>", "Banner broken", "See the two screenshots.")
    for name in ("first.png", "second.png"):
        msg.add_attachment(png((800, 800)), maintype="image", subtype="png", filename=name)
    result = pipe(runner, msg)
    assert result.exit_code == 0, result.output
    ticket = db.session.scalar(sa.select(Ticket))
    assert [a.filename for a in ticket.attachments] == ["first.png"]


# --- the real `serve` (waitress) ------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Run `flask --app supportwidget serve` with its worker on SQLite; yield (port, site key)."""
    from test_worker import get, seed, spawn, wait_until

    from conftest import make_app
    from smtp_fixtures import free_port

    tmp = tmp_path_factory.mktemp("serve")
    database = f"sqlite:///{tmp / 'db.sqlite'}"
    site_key = seed(make_app(database, tmp))
    env = {**os.environ, "SUPPORTWIDGET_INSTANCE_PATH": str(tmp / "instance")}
    settings = {
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database,
        "QUEUE_URL": f"sqlite:///{tmp / 'queue.sqlite'}",
        "UPLOAD_FOLDER": str(tmp / "uploads"),
        "RATELIMIT_ENABLED": "false",
        "SCHEDULER_SECONDS": "1",
    }
    env.update({f"SUPPORTWIDGET_{k}": v for k, v in settings.items()})
    port = free_port()
    server = spawn(env, "serve", "--port", str(port), log=tmp / "serve.log")
    try:
        # Healthy once serve's worker process, which imports the app itself, has beaten.
        wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "serve")
        yield port, site_key
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)


@pytest.mark.slow
def test_serve_refuses_a_huge_upload_unread_with_the_translated_page(served):
    port, site_key = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            f"POST /s/{site_key} HTTP/1.1\r\nHost: x\r\nAccept-Language: de\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {900 * MIB}\r\n\r\n".encode()
            + b"x" * 1000
        )
        answer = read_all(conn)
    head, _, page = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert "Ihre Anfrage ist zu groß (über 64 MB)" in page.decode()


def read_all(conn: socket.socket) -> bytes:
    """Read until the server closes the connection."""
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def healthz_seconds(port: int) -> float:
    """Return how long GET /healthz takes to answer 200 (a fresh connection each time)."""
    start = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200
    return time.monotonic() - start


@pytest.mark.slow
def test_serve_keeps_answering_healthz_while_120_slow_clients_trickle_headers(served):
    port, _ = served
    attackers = []
    try:
        for _ in range(120):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            attackers.append(conn)
        # One header line each every 5 s, for 20 s: never idle long enough to be closed.
        took = []
        for round_ in range(4):
            time.sleep(5)
            for conn in attackers:
                conn.sendall(f"X-Slow-{round_}: 1\r\n".encode())
            took.append(healthz_seconds(port))
        assert max(took) < 5, took
    finally:
        for conn in attackers:
            conn.close()


def test_a_request_without_images_never_waits_for_image_work(client, site, monkeypatch):
    monkeypatch.setattr(screenshots, "DECODE_WAIT", 0.2)
    with screenshots.decoder.slot(1, 2), screenshots.decoder.slot(1, 2):
        response = file_form(client, site, [])
    assert response.status_code == 200 and "SUP-" in response.get_data(as_text=True)
