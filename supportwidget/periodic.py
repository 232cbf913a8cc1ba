"""Jobs the worker runs on a schedule: re-drive the outbox, digest failures, re-page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import outbox

# Functions a queued "call" task may run, by name (e.g. a re-page at a set time).
CALLS: dict[str, Callable[..., Any]] = {}


def every_minute_mail() -> None:
    """Re-drive due or stuck rows, digest failures for admins, warn of SLA breaches."""
    from .breaches import warn_breaches

    outbox.redrive()
    outbox.report_failures()
    warn_breaches()


def every_minute_sms() -> None:
    """Run the SMS-side periodic jobs registered by the workflows."""
    for name in ("repage_due",):
        if name in CALLS:
            CALLS[name]()


def run_all() -> None:
    """Run every periodic job once (called by the worker holding the scheduler lease)."""
    every_minute_sms()
    every_minute_mail()


def call(name: str, *args: Any) -> Any:
    """Run a registered function by name."""
    return CALLS[name](*args)
