"""Screenshots: prove an upload is an image, re-encode it, store it by content hash."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
# JPEG stays JPEG (photos); everything else becomes PNG, which is lossless for screenshots.
OUTPUT = {"JPEG": ("JPEG", "image/jpeg", ".jpg")}
DEFAULT_OUTPUT = ("PNG", "image/png", ".png")


class ScreenshotError(ValueError):
    """An upload that is not an acceptable image."""


@dataclass(frozen=True)
class Screenshot:
    filename: str
    content_type: str
    data: bytes
    sha256: str
    width: int
    height: int

    @property
    def size(self) -> int:
        return len(self.data)


def clean_screenshot(raw: bytes, filename: str, max_bytes: int) -> Screenshot:
    """Decode an upload with Pillow and re-encode it without metadata, or raise."""
    name = os.path.basename(filename or "screenshot")[:100] or "screenshot"
    if len(raw) > max_bytes:
        raise ScreenshotError(
            gettext(
                "%(name)s is larger than %(size)s MB.", name=name, size=max_bytes // (1024 * 1024)
            )
        )
    if not raw:
        raise ScreenshotError(gettext("%(name)s is empty.", name=name))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:
                if image.format not in ALLOWED_FORMATS:
                    raise ScreenshotError(not_an_image(name))
                if image.width * image.height > MAX_PIXELS:
                    raise ScreenshotError(too_many_pixels(name))
                image.load()
                return _reencode(image, name)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ScreenshotError(too_many_pixels(name)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ScreenshotError):
            raise
        raise ScreenshotError(
            gettext("%(name)s is not a readable PNG, JPEG, WebP or GIF image.", name=name)
        ) from exc


def not_an_image(name: str) -> str:
    """Explain that a file is not one of the accepted image formats."""
    return gettext("%(name)s is not a PNG, JPEG, WebP or GIF image.", name=name)


def too_many_pixels(name: str) -> str:
    """Explain that an image is too big to decode safely."""
    return gettext(
        "%(name)s has too many pixels (over %(megapixels)s megapixels).",
        name=name,
        megapixels=MAX_PIXELS // 1_000_000,
    )


def _reencode(image: Image.Image, name: str) -> Screenshot:
    """Return the image's pixels, upright, encoded afresh with no metadata at all.

    Kept: the pixels, turned by the EXIF orientation (the one field needed to show a photo
    the right way up). Dropped, because encoders copy them from ``image.info`` and any of
    them can carry text: EXIF (GPS, camera, description), XMP, the ICC profile (its pixels
    are then read as sRGB: a Display P3 screenshot looks slightly paler), JPEG comments
    (COM), PNG text chunks (tEXt, zTXt, iTXt), GIF and WebP comments and metadata, dpi,
    and every frame of an animation but the first.
    """
    fmt, content_type, ext = OUTPUT.get(image.format or "", DEFAULT_OUTPUT)
    ImageOps.exif_transpose(image, in_place=True)
    frame = image.convert("RGB" if fmt == "JPEG" else "RGBA")
    frame.info.clear()
    out = io.BytesIO()
    frame.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {"optimize": False}))
    data = out.getvalue()
    stem = Path(name).stem[:90] or "screenshot"
    return Screenshot(
        filename=stem + ext,
        content_type=content_type,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        width=frame.width,
        height=frame.height,
    )


def store(shot: Screenshot, folder: str) -> Path:
    """Write a screenshot under its content hash (idempotent) and return the path."""
    path = Path(folder) / shot.sha256[:2] / shot.sha256
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp" + os.urandom(4).hex())
        try:
            tmp.write_bytes(shot.data)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # on a full disk, half a file would only fill it more
            raise
    return path


def stored_path(sha256: str, folder: str) -> Path:
    """Return where a stored screenshot lives."""
    return Path(folder) / sha256[:2] / sha256
