"""`/healthz`: liveness, database and worker heartbeat as JSON."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify

from supportwidget.models import Heartbeat, Notification, db, utcnow
from supportwidget.notify.channels import CHANNELS
from supportwidget.platform import jobs
from supportwidget.platform.heartbeat import SCHEDULER
from supportwidget.vocab import NotificationStatus

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Report whether the database answers and a worker beat recently."""
    report: dict[str, object] = {"status": "ok"}
    try:
        db.session.execute(sa.text("SELECT 1"))
        newest = db.session.scalar(
            sa.select(sa.func.max(Heartbeat.beat_at)).where(Heartbeat.name != SCHEDULER)
        )
        backlog = db.session.scalar(
            sa.select(sa.func.count(Notification.id)).where(
                Notification.status == NotificationStatus.PENDING
            )
        )
        report["database"] = "ok"
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        report.update(status="error", database=f"error: {type(exc).__name__}")
        return jsonify(report), 503
    report["queue"] = jobs.storage_status()
    report["channels"] = {name: channel.health() for name, channel in CHANNELS.items()}
    window = timedelta(seconds=4 * float(current_app.config["SCHEDULER_SECONDS"]))
    fresh = newest is not None and utcnow() - newest < window
    report["worker"] = "ok" if fresh else "no recent heartbeat"
    report["last_heartbeat"] = newest.isoformat() if newest else None
    report["pending_notifications"] = backlog
    healthy = fresh and report["queue"] == "ok"
    if not healthy:
        report["status"] = "degraded"
    return jsonify(report), 200 if healthy else 503
