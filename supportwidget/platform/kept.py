"""Screenshots kept across a refused submission, filed under the form token's nonce.

A form sent back with an error (422) must not lose the images the requester attached: the
accepted uploads are written, as received, to <UPLOAD_FOLDER>/kept/<nonce>/, and the page
shows them again. The next submission with the same form token takes them along; the
periodic job `prune_kept` removes folders older than a form token can live.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from .screenshots import Upload

KEPT = "kept"
INDEX = "index.json"
# Nonces are secrets.token_urlsafe; ids a prefix of the upload's SHA-256.
NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
SHOT_ID = re.compile(r"[0-9a-f]{16}")
# What the first bytes of an accepted upload say it is (its header was already read by Pillow).
SIGNATURES = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)


@dataclass(frozen=True)
class Kept:
    """One kept screenshot: its id in the form, and the upload as received."""

    id: str
    upload: Upload

    @property
    def name(self) -> str:
        return self.upload.name


def folder(root: str, nonce: str) -> Path:
    """Return the folder of one form token's kept screenshots (ValueError for a bad nonce)."""
    if not NONCE.fullmatch(nonce or ""):
        raise ValueError("not a form nonce")
    return Path(root) / KEPT / nonce


def shot_id(upload: Upload) -> str:
    """Return an upload's id: the same bytes keep the same id across submissions."""
    return hashlib.sha256(upload.raw).hexdigest()[:16]


def keep(root: str, nonce: str, uploads: list[Upload]) -> list[Kept]:
    """Keep exactly these uploads for a form token (earlier ones not among them are removed)."""
    place = folder(root, nonce)
    if not uploads and not place.exists():
        return []
    place.mkdir(parents=True, exist_ok=True)
    kept = [Kept(shot_id(u), u) for u in uploads]
    for item in kept:
        path = place / item.id
        if not path.exists():
            _write(path, item.upload.raw)
    _write(place / INDEX, json.dumps([[k.id, k.name] for k in kept]).encode())
    wanted = {k.id for k in kept} | {INDEX}
    for path in place.iterdir():
        if path.name not in wanted:
            path.unlink(missing_ok=True)
    return kept


def load(root: str, nonce: str, dropped: frozenset[str] = frozenset()) -> list[Kept]:
    """Return a form token's kept screenshots, in the order attached, less those dropped."""
    try:
        place = folder(root, nonce)
        entries = json.loads((place / INDEX).read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return []
    kept = []
    for shot, name in entries:
        if shot in dropped:
            continue
        try:
            kept.append(Kept(shot, Upload(name, (place / shot).read_bytes())))
        except OSError:
            continue  # pruned meanwhile: the page will simply not show it again
    return kept


def read(root: str, nonce: str, shot: str) -> tuple[bytes, str] | None:
    """Return one kept screenshot's bytes and content type, or None."""
    if not SHOT_ID.fullmatch(shot or ""):
        return None
    try:
        raw = (folder(root, nonce) / shot).read_bytes()
    except (ValueError, OSError):
        return None
    return raw, content_type(raw)


def content_type(raw: bytes) -> str:
    """Return the image type an accepted upload's first bytes name."""
    return next((kind for magic, kind in SIGNATURES if raw.startswith(magic)), "image/png")


def forget(root: str, nonce: str | None) -> None:
    """Remove a form token's kept screenshots (its request was filed)."""
    if nonce and NONCE.fullmatch(nonce):
        shutil.rmtree(folder(root, nonce), ignore_errors=True)


def prune(root: str, max_age: float, now: float | None = None) -> int:
    """Remove kept folders untouched for longer than max_age seconds; return how many."""
    base = Path(root) / KEPT
    if not base.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age
    removed = 0
    for place in base.iterdir():
        try:
            if place.stat().st_mtime < cutoff:
                shutil.rmtree(place, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def _write(path: Path, data: bytes) -> None:
    """Write a file whole or not at all."""
    tmp = path.with_name(path.name + ".tmp" + os.urandom(4).hex())
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def prune_expired() -> int:
    """Remove kept screenshots whose form token has expired (a periodic job)."""
    config = current_app.config
    return prune(config["UPLOAD_FOLDER"], config["FORM_TOKEN_MAX_AGE"])
