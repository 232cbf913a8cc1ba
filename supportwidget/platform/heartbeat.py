"""Worker heartbeats and the scheduler lease, kept in the database (Heartbeat rows).

Every worker process beats; exactly one at a time holds the lease that runs the periodic
jobs. /healthz reads the beats; the worker writes them.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from supportwidget.models import Heartbeat, db, rows_changed, utcnow

#: The Heartbeat row that is the scheduler lease, not a worker's beat.
SCHEDULER = "scheduler-lease"


def beat(name: str) -> None:
    """Record that this worker is alive."""
    row = db.session.get(Heartbeat, name) or Heartbeat(name=name, beat_at=utcnow())
    row.beat_at = utcnow()
    db.session.add(row)
    db.session.commit()


def take_scheduler_lease(holder: str, seconds: float) -> bool:
    """Let exactly one worker process run the periodic jobs; a dead holder's lease expires."""
    now = utcnow()
    if db.session.get(Heartbeat, SCHEDULER) is None:
        db.session.add(Heartbeat(name=SCHEDULER, beat_at=now - timedelta(days=1), holder=""))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    taken = rows_changed(
        sa.update(Heartbeat)
        .where(
            Heartbeat.name == SCHEDULER,
            sa.or_(
                Heartbeat.holder == holder, Heartbeat.beat_at < now - timedelta(seconds=seconds)
            ),
        )
        .values(holder=holder, beat_at=now)
    )
    db.session.commit()
    return taken == 1
