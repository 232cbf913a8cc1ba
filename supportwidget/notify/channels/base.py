"""What a notification channel is: a small protocol the outbox, the worker and /healthz use.

Like Huey's storages (one base, one class per backend): each channel module has one class
with these attributes, and `supportwidget.notify.channels.CHANNELS` lists them by name.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from supportwidget.models import Notification

log = logging.getLogger(__name__)
_file_lock = threading.Lock()

#: What became of one row: ("sent", provider id or None), ("retry", error), ("failed", error),
#: or ("release", None) for a row not attempted (back to pending as it was).
Outcome = tuple[str, str | None]


@dataclass
class SmsResult:
    """What became of one request to a provider (an SMS, or starting a call): the outcome,
    its message or call id, or the error."""

    outcome: Literal["sent", "retry", "failed"]
    message_id: str | None
    error: str | None


class Channel(Protocol):
    """One way to reach a person (a value of Notification.channel)."""

    #: The value of Notification.channel this channel sends.
    name: str
    #: The job lane its deliveries run on: a lane of its own never waits behind another's.
    lane: str
    #: Rows per delivery job (sent over one connection where the transport has one).
    batch: int
    #: Worker threads on its lane.
    threads: int
    #: Seconds an idle worker thread waits before looking again: first, and at most.
    poll: tuple[float, float]

    def send(self, rows: Sequence[Notification], until: float) -> list[Outcome]:
        """Send each row once; start none after `until` (time.monotonic()) but release it."""
        ...

    def health(self) -> str:
        """Say where messages go ("smtp", "files" …), without a network call."""
        ...


def outcome_of(result: SmsResult) -> Outcome:
    """Return the outbox outcome of a provider's answer: sent with its id, or the error."""
    if result.outcome == "sent":
        return "sent", result.message_id
    return result.outcome, result.error


def send_each(
    rows: Sequence[Notification], until: float, send_one: Callable[[Notification], Outcome]
) -> list[Outcome]:
    """Send rows one by one until `until`; a crash retries its row, never leaves it claimed."""
    outcomes: list[Outcome] = []
    for row in rows:
        if time.monotonic() > until:
            outcomes.append(("release", None))
            continue
        try:
            outcomes.append(send_one(row))
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the row claimed
            log.exception("sending notification %s crashed", row.id)
            outcomes.append(("retry", f"internal error: {exc}"))
    return outcomes


def append_json_line(path: str, record: Mapping[str, object]) -> int:
    """Append a record as one JSON line (the file sinks without credentials); return its number."""
    line = json.dumps(record, ensure_ascii=False)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _file_lock, open(path, "a+", encoding="utf-8") as sink:
        # `serve` and `worker` processes may share the file: lock across processes too.
        fcntl.flock(sink, fcntl.LOCK_EX)
        sink.seek(0)
        number = sum(1 for _ in sink) + 1
        sink.write(line + "\n")
    return number
