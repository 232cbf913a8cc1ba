"""One client site for staff: its details, its latest WordPress heartbeat, its recent tickets.

Sections of the page (`dashboard/site.html`) are independent blocks, so later checks of a
site (uptime, response times) add a section of their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template

from supportwidget.models import Site, Ticket, db
from supportwidget.staff.auth import login_required
from supportwidget.watch import overview, settings

bp = Blueprint("sites", __name__, url_prefix="/dashboard/sites")
RECENT_TICKETS = 10


@bp.get("/<id:site_id>")
@login_required
def site_page(site_id: int) -> str:
    """Show one site: its details, uptime and response times, incidents, heartbeat, tickets."""
    site = db.session.get(Site, site_id)
    if site is None:
        abort(404, "There is no such site.")
    recent = db.session.scalars(
        sa.select(Ticket)
        .where(Ticket.site_id == site.id)
        .order_by(Ticket.id.desc())
        .limit(RECENT_TICKETS)
    ).all()
    return render_template(
        "dashboard/site.html",
        site=site,
        tickets=recent,
        status=overview.status_of(site, site.id in overview.down_site_ids([site.id])),
        uptimes=overview.uptimes(site.id),
        chart=overview.chart(site.id),
        incidents=overview.incidents(site.id),
        latest=overview.latest_check(site.id),
        interval=settings.interval_of(site),
    )
