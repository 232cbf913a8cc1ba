"""`mail-in`: the MTA pipes one message in; the exit status tells it to bounce or retry."""

from __future__ import annotations

import logging
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from supportwidget.intake.mailin import MAX_MESSAGE_BYTES, Unfileable, handle
from supportwidget.models import db

log = logging.getLogger(__name__)
EX_DATAERR = 65  # sysexits.h: the message can never be filed; the MTA bounces it
EX_TEMPFAIL = 75  # sysexits.h: the MTA keeps the message and tries again later


def failure(exc: Exception) -> tuple[int, str]:
    """Return the exit status and the reason for a message that could not be processed.

    Only an outage (the database or the upload folder) is worth the MTA's retries; a
    message that failed for what it holds fails the same way every time: bounce it.
    """
    if isinstance(exc, Unfileable):
        return EX_DATAERR, f"cannot be filed, {exc}"
    if isinstance(exc, RecursionError):
        return EX_DATAERR, "cannot be filed, MIME parts nested too deeply"
    if isinstance(exc, DataError):
        return EX_DATAERR, f"cannot be filed, the database refuses its data ({exc.orig})"
    if isinstance(exc, SQLAlchemyError):
        return EX_TEMPFAIL, f"database unavailable, try again later: {exc}"
    if isinstance(exc, OSError):
        return EX_TEMPFAIL, f"upload folder unavailable, try again later: {exc}"
    log.exception("mail-in failed")
    return EX_DATAERR, f"cannot be filed, unexpected error ({exc!r})"


@click.command("mail-in")
@with_appcontext
def mail_in_command() -> None:
    """Read one RFC 822 message on stdin (an MTA pipe) and thread it onto the desk."""
    raw = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
    try:
        outcome = handle(raw)
    except IntegrityError:
        # Two deliveries of one message raced: the other one has it.
        db.session.rollback()
        outcome = "duplicate"
    except Exception as exc:  # noqa: BLE001 - every failure gets an exit status the MTA obeys
        db.session.rollback()
        status, reason = failure(exc)
        click.echo(f"mail-in: {reason}", err=True)
        raise SystemExit(status) from exc
    log.info("mail-in: %s", outcome)
    click.echo(f"mail-in: {outcome}")
