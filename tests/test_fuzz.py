"""Bad input never crashes: fuzzed hosted forms and webhooks, and a hostile upload corpus."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from supportwidget.models import Attachment, Ticket, db
from supportwidget.platform.screenshots import ScreenshotError, clean_screenshot

from conftest import form_token, standard_fields, vonage_signed

FIELDS = [
    "subject",
    "description",
    "name",
    "email",
    "needed_by",
    "urgency_note",
    "page_meta",
    "category",
    "billing_consent",
    "callback_phone",
    "form_token",
]
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
form_data = st.dictionaries(st.sampled_from(FIELDS), texts | st.just(""), max_size=len(FIELDS))
fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz
@given(data=form_data, keep_token=st.booleans(), emergency=st.booleans())
def test_hosted_forms_never_answer_5xx(client, site, data, keep_token, emergency):
    path = f"/s/{site.site_key}" + ("/emergency" if emergency else "")
    if keep_token:
        data = {**data, "form_token": form_token(client, path)}
    response = client.post(path, data=data)
    assert response.status_code in (200, 400, 422), response.status_code


@fuzz
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "msisdn",
                "text",
                "messageId",
                "sig",
                "timestamp",
                "status",
                "client-ref",
                "err-code",
                "to",
            ]
        ),
        texts,
        max_size=9,
    ),
    hook=st.sampled_from(["inbound", "status"]),
    method=st.sampled_from(["get", "post"]),
    signed=st.booleans(),
)
def test_webhooks_never_answer_5xx(app, client, params, hook, method, signed):
    app.config.update(VONAGE_SIGNATURE_SECRET="s3cret", VONAGE_SIGNATURE_METHOD="md5hash")
    if signed:  # past the signature check: ACK parsing, lookups and receipts get fuzzed too
        params = vonage_signed({**params, "timestamp": str(int(time.time()))}, "s3cret")
    call = getattr(client, method)
    kwargs = {"query_string": params} if method == "get" else {"data": params}
    response = call(f"/webhooks/vonage/{hook}", **kwargs)
    assert response.status_code < 500


def png(size=(64, 64)) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", size, bytes(range(256)) * (size[0] * size[1] * 3 // 256)).save(
        out, "PNG"
    )
    return out.getvalue()


def huge_dimensions_png() -> bytes:
    """A valid PNG header claiming 100000 x 100000 pixels, with almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 10))
        + chunk(b"IEND", b"")
    )


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {2: (51.0, 30.0, 0.0), 1: "N"}  # GPSInfo: latitude
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(out, "JPEG", exif=exif)
    return out.getvalue()


CORPUS = {
    "polyglot png+html": (png() + b"<html><script>alert(document.cookie)</script></html>", "clean"),
    "svg with script": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "refused",
    ),
    "html named .png": (b"<!doctype html><script>alert(1)</script>", "refused"),
    "truncated png": (png()[: len(png()) // 2], "refused"),
    "huge dimensions": (huge_dimensions_png(), "refused"),
    "exif gps jpeg": (jpeg_with_gps(), "clean"),
    "empty file": (b"", "refused"),
    "pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "refused"),
}


@pytest.mark.parametrize("name", CORPUS)
def test_upload_corpus_is_refused_or_cleaned(name):
    raw, expected = CORPUS[name]
    if expected == "refused":
        with pytest.raises(ScreenshotError):
            clean_screenshot(raw, "evil.png", 10 * 1024 * 1024)
        return
    shot = clean_screenshot(raw, "evil.png", 10 * 1024 * 1024)
    assert b"<script>" not in shot.data and b"PhoneMaker" not in shot.data
    reopened = Image.open(io.BytesIO(shot.data))
    assert not reopened.getexif()  # no EXIF at all, so no GPS
    assert reopened.info.get("exif") is None


def test_hostile_upload_through_the_form_stores_only_the_clean_image(app, client, site):
    data = {
        "subject": "Broken page",
        "description": "The header overlaps the menu.",
        "name": "Jane",
        "email": "jane@example.com",
        "form_token": form_token(client, f"/s/{site.site_key}"),
        "screenshots": [(io.BytesIO(CORPUS["polyglot png+html"][0]), "x.png")],
    }
    response = client.post(f"/s/{site.site_key}", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    attachment = db.session.scalar(sa.select(Attachment))
    stored = open(
        f"{app.config['UPLOAD_FOLDER']}/{attachment.sha256[:2]}/{attachment.sha256}", "rb"
    ).read()
    assert b"<script>" not in stored
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 1


# --- reproducers that once answered 500 -------------------------------------------------------


@pytest.mark.parametrize("stamp", ["\u00b2", "9" * 400, "9" * 5000])
def test_a_malformed_identity_signature_is_simply_not_verified(client, site, stamp):
    user = {"name": "Ann", "email": "ann@example.com", "signature": f"{stamp}.{'a' * 64}"}
    response = client.post(f"/s/{site.site_key}/identity", json=user)
    assert response.status_code == 200 and response.get_json() == {"verified": False}
    path = f"/s/{site.site_key}"
    data = standard_fields(page_meta=f'{{"user": {json.dumps(user)}}}')
    response = client.post(path, data={**data, "form_token": form_token(client, path)})
    assert response.status_code == 200 and "SUP-" in response.get_data(as_text=True)
    assert not db.session.scalar(sa.select(Ticket.identity_verified))


def test_deeply_nested_page_details_are_refused_with_a_message(client, site):
    path = f"/s/{site.site_key}"
    data = standard_fields(page_meta="[" * 4000 + "]" * 4000)
    response = client.post(path, data={**data, "form_token": form_token(client, path)})
    assert response.status_code == 422
    assert "Page details are not valid JSON." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0


@pytest.mark.parametrize("field", ["subject", "description", "name"])
def test_a_nul_character_is_refused_with_a_message(client, site, field):
    # PostgreSQL cannot store NUL in text: it answered 503 "try again", as if we were down.
    path = f"/s/{site.site_key}"
    data = standard_fields(**{field: "Broken\x00 contact form, for real"})
    response = client.post(path, data={**data, "form_token": form_token(client, path)})
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
