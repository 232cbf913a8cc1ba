"""Screenshots: prove an upload is an image, re-encode it, store it by content hash."""

from __future__ import annotations

import contextvars
import hashlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from flask_babel import gettext
from PIL import Image, ImageOps, UnidentifiedImageError

from . import plaintext

MAX_PIXELS = 40_000_000
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
# JPEG stays JPEG (photos); everything else becomes PNG, which is lossless for screenshots.
OUTPUT = {"JPEG": ("JPEG", "image/jpeg", ".jpg")}
DEFAULT_OUTPUT = ("PNG", "image/png", ".png")
# Image work in flight per process: two decodes at a time; requests waiting for one may hold
# at most this many of the largest requests' pixels (MAX_PIXELS_PER_REQUEST), and wait at most
# DECODE_WAIT seconds.
DECODE_SLOTS = 2
QUEUED_REQUESTS = 4
DECODE_WAIT = 5.0
_decoders = ThreadPoolExecutor(DECODE_SLOTS, thread_name_prefix="screenshot-decoder")


class ScreenshotError(ValueError):
    """An upload that is not an acceptable image."""


class Busy(Exception):
    """Every image-decoding slot of this process stayed taken: the requester should retry."""


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


@dataclass(frozen=True)
class Upload:
    """An image file as received: its name as the requester will see it, and its bytes."""

    name: str
    raw: bytes
    pixels: int = 0  # known once its header was read

    @classmethod
    def named(cls, filename: str | None, raw: bytes) -> Upload:
        """Return an upload under a safe display name: one line, no folders, 100 characters."""
        # The name goes into the staff e-mail's headers and the database: one clean line.
        name = plaintext.one_line(os.path.basename(filename or "screenshot"))[:100]
        return cls(name or "screenshot", raw)


def probe(raw: bytes, name: str, max_bytes: int) -> int:
    """Check an upload's size, format and dimensions from its header alone; return its pixels."""
    if len(raw) > max_bytes:
        raise ScreenshotError(
            gettext(
                "%(name)s is larger than %(size)s MB.", name=name, size=max_bytes // (1024 * 1024)
            )
        )
    if not raw:
        raise ScreenshotError(gettext("%(name)s is empty.", name=name))
    with _readable(name), Image.open(io.BytesIO(raw)) as image:  # reads the header only
        if image.format not in ALLOWED_FORMATS:
            raise ScreenshotError(not_an_image(name))
        if image.width * image.height > MAX_PIXELS:
            raise ScreenshotError(too_many_pixels(name))
        return image.width * image.height


def screen_uploads(
    uploads: list[Upload], max_bytes: int, max_pixels: int
) -> tuple[list[Upload], list[str]]:
    """Split uploads into acceptable ones and problems, from image headers alone (no decoding).

    Pixels add up over the request: an image that would take it over `max_pixels` is refused.
    """
    accepted: list[Upload] = []
    problems: list[str] = []
    total = 0
    for upload in uploads:
        try:
            pixels = probe(upload.raw, upload.name, max_bytes)
        except ScreenshotError as exc:
            problems.append(str(exc))
            continue
        if total + pixels > max_pixels:
            problems.append(over_request_budget(upload.name, max_pixels))
            continue
        total += pixels
        accepted.append(replace(upload, pixels=pixels))
    return accepted, problems


def clean_uploads(
    uploads: list[Upload], max_bytes: int, max_pixels: int
) -> tuple[list[Screenshot], list[str]]:
    """Decode and re-encode screened uploads in a decoding slot; return them and problems."""
    if not uploads:
        return [], []  # a request without images never waits for image work
    with decoder.slot(sum(u.pixels for u in uploads), QUEUED_REQUESTS * max_pixels):
        # On the decoders' own threads: the memory the C allocator keeps after a large decode
        # then stays with those two threads instead of growing on every server thread.
        context = contextvars.copy_context()  # the request's language, for error messages
        return _decoders.submit(context.run, _decode_all, uploads, max_bytes).result()


def _decode_all(uploads: list[Upload], max_bytes: int) -> tuple[list[Screenshot], list[str]]:
    shots: list[Screenshot] = []
    problems: list[str] = []
    for upload in uploads:
        try:
            shots.append(clean_screenshot(upload.raw, upload.name, max_bytes))
        except ScreenshotError as exc:
            problems.append(str(exc))
    return shots, problems


class DecodeQueue:
    """This process's image-decoding slots, and the pixels waiting for them."""

    def __init__(self, slots: int) -> None:
        self.slots = threading.BoundedSemaphore(slots)
        self.lock = threading.Lock()
        self.pixels = 0

    @contextmanager
    def slot(self, pixels: int, budget: int) -> Iterator[None]:
        """Hold a decoding slot for `pixels`; raise Busy if the queue is full or none frees soon.

        A waiting request holds a server thread. Small screenshots queue freely; once the
        pixels queued reach `budget`, further requests are told at once, so a flood of large
        images never ties up the threads the forms (the emergency form above all) answer on.
        """
        with self.lock:
            if self.pixels and self.pixels + pixels > budget:
                raise Busy
            self.pixels += pixels
        try:
            if not self.slots.acquire(timeout=DECODE_WAIT):
                raise Busy
            try:
                yield
            finally:
                self.slots.release()
        finally:
            with self.lock:
                self.pixels -= pixels


decoder = DecodeQueue(DECODE_SLOTS)


def clean_screenshot(raw: bytes, filename: str, max_bytes: int) -> Screenshot:
    """Decode an upload with Pillow and re-encode it without metadata, or raise."""
    name = Upload.named(filename, raw).name
    probe(raw, name, max_bytes)
    with _readable(name), Image.open(io.BytesIO(raw)) as image:
        image.load()
        return _reencode(image, name)


@contextmanager
def _readable(name: str) -> Iterator[None]:
    """Turn Pillow's complaints about a file into one clear ScreenshotError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
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


def over_request_budget(name: str, max_pixels: int) -> str:
    """Explain that an image would take the request over its pixel limit."""
    return gettext(
        "%(name)s was not accepted: the screenshots of one request may have %(megapixels)s "
        "megapixels in all. Please attach fewer or smaller images.",
        name=name,
        megapixels=max_pixels // 1_000_000,
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
