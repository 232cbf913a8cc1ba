"""SMS channel: the real Vonage SDK against a local TLS stand-in of the SMS API."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from vonage_http_client import Auth

from supportwidget.notify.channels import vonage as sms_module
from supportwidget.notify.channels.base import SmsResult
from supportwidget.notify.channels.sms import sms, sms_sent
from supportwidget.notify.channels.vonage import UNKNOWN, verify_signature
from supportwidget.notify.gsm import GSM_BASIC, GSM_EXTENDED, fit, sms_text

from smtp_fixtures import free_port

if TYPE_CHECKING:
    from vonage_standin import VonageStandin

# The stand-in's fixtures (vonage_standin, sms_app) come from this plugin module.
pytest_plugins = ["vonage_standin"]

PAGE = "SUP-12 EMERGENCY site down: shop.example.com. Reply ACK 12 to acknowledge."


def _page(number: str, ref: str = "41") -> SmsResult:
    return sms.send(f"+{number}", PAGE, client_ref=ref)


def test_sent_keeps_vonage_message_id(sms_app: Flask, vonage_standin: VonageStandin) -> None:
    result = _page("447700900001", ref="41")

    assert result.outcome == "sent"
    assert result.error is None
    [request] = vonage_standin.requests
    assert result.message_id == "0B00000" + "1".rjust(11, "0")
    assert request["to"] == "447700900001"
    assert request["from"] == "SupportDesk"
    assert request["text"] == PAGE
    assert request["client-ref"] == "41"
    assert request["type"] is None  # plain GSM-7 text
    assert request["content-type"] == "application/x-www-form-urlencoded"


def test_non_gsm_text_is_sent_as_unicode(sms_app: Flask, vonage_standin: VonageStandin) -> None:
    result = sms.send("+447700900001", "Zoë wrote: сайт недоступен", client_ref="7")

    assert result.outcome == "sent"
    assert vonage_standin.requests[0]["type"] == "unicode"
    assert vonage_standin.requests[0]["text"] == "Zoë wrote: сайт недоступен"


@pytest.mark.parametrize(
    ("behaviour", "outcome", "error_part"),
    [
        ("throttled", "retry", "Vonage status 1: Throughput Rate Exceeded"),
        ("invalid", "failed", "Vonage status 3: Invalid to address"),
        ("quota", "failed", "Vonage status 9: Quota Exceeded"),
        ("http500", "retry", "HTTP 500"),
        ("http503", "retry", "HTTP 503"),
    ],
)
def test_vonage_answers_are_classified(
    sms_app: Flask,
    vonage_standin: VonageStandin,
    behaviour: str,
    outcome: str,
    error_part: str,
) -> None:
    vonage_standin.behaviour["447700900002"] = behaviour

    result = _page("447700900002")

    assert (result.outcome, result.message_id) == (outcome, None)
    assert error_part in (result.error or "")
    assert len(vonage_standin.requests) == 1  # neither the SDK nor urllib3 re-sent


def test_dropped_connection_is_sent_once_and_failed_as_unknown(
    sms_app: Flask, vonage_standin: VonageStandin
) -> None:
    vonage_standin.behaviour["447700900003"] = "drop"

    result = _page("447700900003")

    # The SDK re-posts on RemoteDisconnected by default: one page must be one request.
    assert len(vonage_standin.to("447700900003")) == 1
    assert result.outcome == "failed"
    assert UNKNOWN in (result.error or "")


def test_stalled_vonage_times_out_with_a_clear_error(
    sms_app: Flask, vonage_standin: VonageStandin
) -> None:
    vonage_standin.behaviour["447700900004"] = "stall"

    started = time.monotonic()
    result = _page("447700900004")
    elapsed = time.monotonic() - started

    assert elapsed < sms_app.config["SMS_TIMEOUT"] + 1
    assert result.outcome == "failed"
    assert "no answer from Vonage in time" in (result.error or "")
    assert UNKNOWN in (result.error or "")
    assert len(vonage_standin.requests) == 1


def test_refused_connection_sends_nothing_and_retries(sms_app: Flask) -> None:
    sms_app.config["VONAGE_REST_HOST"] = f"127.0.0.1:{free_port()}"
    sms.init_app(sms_app)

    result = _page("447700900005")

    assert result.outcome == "retry"
    assert "nothing was sent" in (result.error or "")


def test_untrusted_certificate_fails_without_sending(
    sms_app: Flask, vonage_standin: VonageStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")

    result = _page("447700900006")

    assert result.outcome == "failed"
    assert "TLS error" in (result.error or "")
    assert vonage_standin.requests == []


def test_wrong_credentials_fail_with_vonage_text(
    sms_app: Flask, vonage_standin: VonageStandin
) -> None:
    sms_app.config["VONAGE_API_SECRET"] = "not-the-secret"
    sms.init_app(sms_app)

    result = _page("447700900007")

    assert result.outcome == "failed"
    assert "Vonage status 4: Bad Credentials" in (result.error or "")


def test_signal_fires_for_every_attempt(sms_app: Flask, vonage_standin: VonageStandin) -> None:
    vonage_standin.behaviour["447700900009"] = "invalid"
    seen: list[dict[str, Any]] = []

    def record(sender: Flask, **kwargs: Any) -> None:
        seen.append({"sender": sender, **kwargs})

    with sms_sent.connected_to(record, sender=sms_app):
        ok = _page("447700900008", ref="1")
        bad = _page("447700900009", ref="2")

    assert [s["client_ref"] for s in seen] == ["1", "2"]
    assert seen[0] == {
        "sender": sms_app,
        "to": "+447700900008",
        "text": PAGE,
        "client_ref": "1",
        "result": ok,
    }
    assert seen[1]["result"] is bad and bad.outcome == "failed"


def test_requests_stay_under_vonage_rate_limit(
    sms_app: Flask, vonage_standin: VonageStandin
) -> None:
    count, results = 40, []
    lock = threading.Lock()

    def worker(start: int) -> None:
        with sms_app.app_context():
            for n in range(start, count, 8):
                result = _page(f"4477009{n:05d}", ref=str(n))
                with lock:
                    results.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [r.outcome for r in results] == ["sent"] * count
    arrivals = sorted(r["at"] for r in vonage_standin.requests)
    assert len(arrivals) == count
    # 30 per second: 40 requests need at least 39 gaps of 1/30 s.
    assert arrivals[-1] - arrivals[0] >= 39 / 30 - 0.1
    busiest = max(sum(1 for t in arrivals if a <= t < a + 1) for a in arrivals)
    # 30 slots per second; a loaded machine delays some arrivals and bunches them a little.
    # Without the limiter all 40 arrive within a fraction of a second.
    assert busiest <= 34


def test_without_credentials_sms_go_to_a_file(
    tmp_path: Path, vonage_standin: VonageStandin, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask("no_credentials", instance_path=str(tmp_path / "instance"))
    app.config.update(
        VONAGE_API_KEY="",
        VONAGE_API_SECRET=None,
        VONAGE_REST_HOST=vonage_standin.host,
        SMS_FROM="SupportDesk",
    )
    with caplog.at_level(logging.WARNING):
        sms.init_app(app)
    sink = tmp_path / "instance" / "sms.jsonl"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(sink) in warnings[0].getMessage()

    with app.app_context():
        first = sms.send("+447700900010", PAGE, client_ref="5")
        second = sms.send("+447700900011", "Zoë: “down”", client_ref="6")

    assert (first.outcome, first.message_id) == ("sent", "file-1")
    assert (second.outcome, second.message_id) == ("sent", "file-2")
    lines = [json.loads(line) for line in sink.read_text(encoding="utf-8").splitlines()]
    assert [line["client_ref"] for line in lines] == ["5", "6"]
    assert lines[1]["text"] == "Zoë: “down”"
    assert set(lines[0]) == {"to", "from", "text", "client_ref", "at"}
    assert lines[0]["to"] == "+447700900010" and lines[0]["from"] == "SupportDesk"
    assert vonage_standin.requests == []


# --- sms_text -------------------------------------------------------------------

GSM = set(GSM_BASIC + GSM_EXTENDED)


def septets(text: str) -> int:
    return sum(2 if ch in GSM_EXTENDED else 1 for ch in text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Site “down” – ‘now’…", "Site \"down\" - 'now'..."),
        ("Zoë, Łukasz, café, naïve", "Zoe, ?ukasz, café, naive"),
        ("fire 🔥️ ok", "fire ? ok"),
        ("tab\there\u00a0nbsp", "tab here nbsp"),
        ("price 10 € [urgent]", "price 10 € [urgent]"),
        ("Ñandú Ørsted ß", "Ñandu Ørsted ß"),
    ],
)
def test_sms_text_replaces_non_gsm_characters(raw: str, expected: str) -> None:
    assert sms_text(raw) == expected


def test_sms_text_keeps_short_text_and_cuts_long_text() -> None:
    exactly = "x" * 160
    assert sms_text(exactly) == exactly

    cut = sms_text("word " * 60)
    assert cut.endswith("...") and septets(cut) <= 160
    assert cut.startswith("word word")


def test_sms_text_counts_extension_characters_twice() -> None:
    cut = sms_text("€" * 100)

    assert cut == "€" * 78 + "..."
    assert septets(cut) == 159


@given(st.text(max_size=400))
def test_sms_text_is_always_gsm_and_fits(raw: str) -> None:
    text = sms_text(raw)

    assert set(text) <= GSM
    assert septets(text) <= 160


def test_fit_cuts_the_longest_part_first_and_keeps_short_ones_whole() -> None:
    assert fit(["acme.test", "Checkout broken"], 40) == ["acme.test", "Checkout broken"]
    site, subject = fit(["s" * 200, "Checkout broken"], 40)
    assert subject == "Checkout broken" and site == "s" * 22 + "..."
    assert fit(["a" * 50, "b" * 50], 40) == ["a" * 17 + "...", "b" * 17 + "..."]
    assert fit(["a" * 50, "b" * 50], 4) == ["", ""]  # no room: dropped, not "..."


@given(st.lists(st.text(max_size=300), max_size=3), st.integers(0, 160))
def test_fit_always_fits_the_budget_in_gsm(parts: list[str], budget: int) -> None:
    fitted = fit(parts, budget)
    assert len(fitted) == len(parts)
    assert sum(septets(part) for part in fitted) <= budget
    assert all(set(part) <= GSM for part in fitted)


# --- verify_signature -------------------------------------------------------------

INBOUND = {
    "msisdn": "447700900001",
    "to": "447700900000",
    "messageId": "0A0000000123ABCD1",
    "text": "ACK 12 & thanks = great",
    "type": "text",
    "keyword": "ACK",
    "message-timestamp": "2025-01-01 10:00:00",
    "timestamp": "1735725600",
    "api-key": "abcd1234",
}
SECRET = "sig-secret-for-tests"


def test_md5hash_matches_vonage_reference_vector() -> None:
    # The vector from Vonage's own Python SDK tests (signature_method None = md5hash).
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    signed = {**params, "sig": "6af838ef94998832dbfc29020b564830"}

    assert verify_signature(signed, "secret", "md5hash")
    assert not verify_signature({**signed, "b": "3"}, "secret", "md5hash")


def _sdk_signature(params: dict[str, str], secret: str, method: str) -> str:
    """Sign with the Vonage SDK's own signer, an independent implementation."""
    auth = Auth(api_key="abcd1234", signature_secret=secret, signature_method=method)
    return auth.sign_params(dict(params))


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_hmac_signatures_made_by_the_sdk_verify(method: str, case: Any) -> None:
    signed = {**INBOUND, "sig": case(_sdk_signature(INBOUND, SECRET, method))}

    assert verify_signature(signed, SECRET, method)
    assert verify_signature(signed, SECRET, method.upper())


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_forged_webhooks_are_rejected(method: str) -> None:
    good = {**INBOUND, "sig": _sdk_signature(INBOUND, SECRET, method)}

    assert not verify_signature({**good, "text": "ACK 13"}, SECRET, method)
    assert not verify_signature({**good, "extra": "1"}, SECRET, method)
    assert not verify_signature(good, "another-secret", method)
    assert not verify_signature({**good, "sig": ""}, SECRET, method)
    assert not verify_signature({k: v for k, v in good.items() if k != "sig"}, SECRET, method)
    assert not verify_signature({**good, "sig": "ä" * 32}, SECRET, method)
    other = "sha512" if method != "sha512" else "sha256"
    assert not verify_signature(good, SECRET, other)
    assert not verify_signature(good, SECRET, "md5hash")


def test_stale_signature_is_rejected_when_max_age_is_given() -> None:
    good = {**INBOUND, "sig": _sdk_signature(INBOUND, SECRET, "sha256")}
    signed_at = float(INBOUND["timestamp"])

    assert verify_signature(good, SECRET, "sha256", max_age=300, now=signed_at + 299)
    assert not verify_signature(good, SECRET, "sha256", max_age=300, now=signed_at + 301)


def test_unknown_signature_method_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown Vonage signature method"):
        verify_signature({**INBOUND, "sig": "0" * 32}, SECRET, "crc32")


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs Redis: set TEST_REDIS_URL")
def test_two_processes_on_one_key_share_the_rate_limit(
    vonage_standin: VonageStandin, tmp_path: Path
) -> None:
    import redis

    redis.Redis.from_url(os.environ["TEST_REDIS_URL"]).flushdb()
    apps = []
    for n in (1, 2):  # two worker processes, as far as the limiter can tell
        app = Flask(f"worker{n}", instance_path=str(tmp_path / f"i{n}"))
        app.config.update(
            VONAGE_API_KEY=f"shared-key-{os.getpid()}",
            VONAGE_API_SECRET="standin-secret",
            VONAGE_REST_HOST=vonage_standin.host,
            SMS_FROM="Desk",
            SMS_TIMEOUT=2,
            RATELIMIT_STORAGE_URI=os.environ["TEST_REDIS_URL"],
        )
        sms_module._limiters.clear()  # a new process starts with no limiter of its own
        sms.init_app(app)
        apps.append(app)
    # Separate limiter objects, like separate processes; only Redis is shared.
    assert apps[0].extensions["sms"].limiter is not apps[1].extensions["sms"].limiter
    vonage_standin.behaviour.clear()

    def burst(app: Flask, offset: int) -> None:
        with app.app_context():
            for n in range(30):
                sms.send(f"4477009{offset + n:05d}", "page", client_ref=str(offset + n))

    threads = [threading.Thread(target=burst, args=(a, i * 100)) for i, a in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    arrivals = sorted(r["at"] for r in vonage_standin.requests)
    assert len(arrivals) == 60
    busiest = max(sum(1 for t in arrivals if a <= t < a + 1) for a in arrivals)
    assert busiest <= 33  # each alone would allow 30/s, together 60/s without sharing
