"""Screenshots keep their pixels and nothing else: every metadata field an encoder carries."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image, ImageCms, PngImagePlugin
from test_standard_request import submit

from supportwidget.models import Attachment, db
from supportwidget.platform.screenshots import stored_path

SECRET = "Home address: 7 Hidden Lane, Springfield"
# What Pillow may report about a clean image: how it was encoded, never what it carries.
HARMLESS = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "progressive"}


def saved(fmt: str, size: tuple[int, int] = (24, 16), **params: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt, **params)
    return out.getvalue()


def exif_with_secret() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = SECRET  # ImageDescription
    exif[0x013B] = SECRET  # Artist
    return exif.tobytes()


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET)  # tEXt
    info.add_text("Author", SECRET, zip=True)  # zTXt
    info.add_itxt("Description", SECRET, lang="en", tkey="Beschreibung")  # iTXt
    info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta>{SECRET}</x:xmpmeta>")
    return saved("PNG", pnginfo=info)


def icc_with_secret(fmt: str) -> bytes:
    # A real sRGB profile with the secret riding along after it.
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return saved(fmt, icc_profile=profile + SECRET.encode())


UPLOADS = {
    "jpeg COM comment": lambda: saved("JPEG", comment=SECRET.encode()),
    "jpeg EXIF and XMP": lambda: saved(
        "JPEG", exif=exif_with_secret(), xmp=f"<x:xmpmeta>{SECRET}</x:xmpmeta>".encode()
    ),
    "jpeg ICC profile": lambda: icc_with_secret("JPEG"),
    "png ICC profile": lambda: icc_with_secret("PNG"),
    "png tEXt zTXt iTXt": png_with_text,
    "png eXIf": lambda: saved("PNG", exif=exif_with_secret()),
    "webp EXIF and XMP": lambda: saved(
        "WEBP", exif=exif_with_secret(), xmp=f"<x:xmpmeta>{SECRET}</x:xmpmeta>".encode()
    ),
    "gif comment": lambda: saved("GIF", comment=SECRET.encode()),
}


def stored_upload(app, client, site, raw: bytes, name: str) -> bytes:
    """Send one upload through the hosted form; return the bytes the service stored."""
    response = submit(client, site, files=[(io.BytesIO(raw), name)])
    assert response.status_code == 200, response.get_data(as_text=True)
    att = db.session.scalar(sa.select(Attachment))
    return Path(stored_path(att.sha256, app.config["UPLOAD_FOLDER"])).read_bytes()


@pytest.mark.parametrize("kind", UPLOADS)
def test_no_metadata_survives_re_encoding(app, client, site, kind):
    raw = UPLOADS[kind]()
    reopened = Image.open(io.BytesIO(raw))
    reopened.load()
    assert SECRET in str(reopened.info) or SECRET.encode() in raw  # the upload does carry it
    data = stored_upload(app, client, site, raw, "shot.img")
    assert SECRET.encode() not in data
    clean = Image.open(io.BytesIO(data))
    clean.load()
    assert set(clean.info) <= HARMLESS, clean.info
    assert not clean.getexif()
    assert clean.getpixel((3, 3))[:3] == pytest.approx((200, 30, 30), abs=6)


def test_a_phone_photo_is_stored_upright(app, client, site):
    # Orientation is the one EXIF field needed to display a photo correctly: it is applied
    # to the pixels before the EXIF is dropped.
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = stored_upload(app, client, site, saved("JPEG", (40, 20), exif=exif), "photo.jpg")
    clean = Image.open(io.BytesIO(data))
    assert clean.size == (20, 40) and not clean.getexif()
    assert db.session.scalar(sa.select(Attachment)).width == 20
