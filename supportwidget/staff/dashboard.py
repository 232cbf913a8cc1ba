"""Staff dashboard: the work queue, one ticket with its timeline, and the ticket actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue

from supportwidget.emergencies.state import emergency_state
from supportwidget.intake import mailin
from supportwidget.models import (
    Attachment,
    Client,
    HeldMessage,
    Notification,
    Site,
    Staff,
    Ticket,
    TimeEntry,
    db,
    parse_id,
    utcnow,
)
from supportwidget.platform import i18n
from supportwidget.platform.screenshots import stored_path
from supportwidget.sla import deadlines as breaches
from supportwidget.sla.workqueue import CursorError, Filters, work_queue
from supportwidget.staff.auth import login_required, signed_in_staff
from supportwidget.tickets import actions as updates
from supportwidget.tickets import conversation
from supportwidget.tickets import filing as tickets
from supportwidget.vocab import STATUS_FILTERS, QueueScope, TicketKind, TicketStatus, TriageDecision
from supportwidget.watch import overview

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", static_folder="static")
PAGE_SIZE = 50


@dataclass
class Due:
    """A ticket's next deadline as staff read it."""

    label: str
    at: datetime
    text: str
    state: str  # ok / at-risk / breached


def relative(moment: datetime, now: datetime) -> str:
    """Return 'in 3 h', '2 h overdue', 'in 25 min' or 'in 2 d'."""
    delta = moment - now
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        amount = f"{max(int(seconds // 60), 1)} min"
    elif seconds < 48 * 3600:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} d"
    return f"in {amount}" if delta.total_seconds() >= 0 else f"{amount} overdue"


def next_due(ticket: Ticket, now: datetime) -> Due | None:
    """Return the ticket's next deadline as staff read it ('Resolution in 3 h')."""
    deadline = breaches.next_deadline(ticket, now)
    if deadline is None:
        return None
    text = "paused" if deadline.state == "paused" else relative(deadline.due, now)
    return Due(deadline.label, deadline.due, text, deadline.state)


def _filters() -> Filters:
    """Read the queue filters from the query string; 400 for values we do not know."""
    args = request.args
    status = args.get("status") or QueueScope.OPEN
    if status not in STATUS_FILTERS:
        scopes, statuses = ", ".join(QueueScope.values()), ", ".join(TicketStatus.values())
        abort(400, f"Unknown status {status!r}: use {scopes} or one of {statuses}.")
    kind = args.get("kind") or None
    if kind is not None and kind not in TicketKind.values():
        abort(400, f"Kind must be {TicketKind.listing()}.")
    assignee = args.get("assignee") or None
    if assignee not in (None, "me"):
        abort(400, "The assignee filter takes only 'me'.")
    return Filters(
        status,
        args.get("client") or None,
        args.get("site") or None,
        kind,
        assignee_id=signed_in_staff().id if assignee == "me" else None,
    )


@bp.get("/")
@login_required
def queue() -> str:
    """Show open work in queue order: emergencies first, then by due time."""
    filters = _filters()
    try:
        rows, cursor = work_queue(filters, limit=PAGE_SIZE, after=request.args.get("after"))
    except CursorError as exc:
        abort(400, str(exc))
    now = utcnow()
    clients = db.session.scalars(sa.select(Client).order_by(Client.name)).all()
    sites = db.session.scalars(sa.select(Site).order_by(Site.name)).all()
    return render_template(
        "dashboard/queue.html",
        rows=[(ticket, next_due(ticket, now)) for ticket in rows],
        filters=filters,
        next_cursor=cursor,
        clients=clients,
        sites=sites,
        held_count=db.session.scalar(sa.select(sa.func.count(HeldMessage.id))),
        down_sites=overview.down_site_ids({ticket.site_id for ticket in rows}),
    )


def load_ticket(reference: str) -> Ticket:
    """Return the ticket for a reference or 404."""
    ticket = tickets.find_by_reference(reference)
    if ticket is None:
        abort(404, f"There is no ticket {reference}.")
    return ticket


def timeline(ticket: Ticket) -> list[tuple[datetime, str, Any]]:
    """Return events, notifications and time entries in the order they happened."""
    entries: list[tuple[datetime, str, Any]] = [(e.created_at, "event", e) for e in ticket.events]
    entries += [(n.created_at, "notification", n) for n in ticket.notifications]
    return sorted(entries, key=lambda entry: (entry[0], entry[1] != "event"))


def render_ticket(ticket: Ticket, error: str | None = None, status: int = 200) -> Response:
    """Render the ticket page (with an error from a failed action, if any)."""
    now = utcnow()
    minutes = db.session.execute(
        sa.select(TimeEntry.billable, sa.func.sum(TimeEntry.minutes))
        .where(TimeEntry.ticket_id == ticket.id)
        .group_by(TimeEntry.billable)
    ).all()
    html = render_template(
        "dashboard/ticket.html",
        ticket=ticket,
        emergency=emergency_state(ticket),
        due=next_due(ticket, now),
        relative=lambda moment: relative(moment, now),
        timeline=timeline(ticket),
        minutes={bool(billable): int(total or 0) for billable, total in minutes},
        resendable={
            row.id for row in ticket.notifications if updates.resend_refusal(ticket, row) is None
        },
        not_billed=(
            updates.not_billed_because(ticket) if any(b and t for b, t in minutes) else None
        ),
        staff_members=db.session.scalars(
            sa.select(Staff).where(Staff.active).order_by(Staff.name)
        ).all(),
        me=signed_in_staff(),
        error=error,
        form=request.form if error else {},
    )
    return Response(html, status=status)


@bp.get("/tickets/<reference>")
@login_required
def ticket_page(reference: str) -> Response:
    """Show everything about one ticket and the forms to act on it."""
    return render_ticket(load_ticket(reference))


def _status(ticket: Ticket) -> str:
    updates.change_status(ticket, signed_in_staff(), request.form.get("status", ""))
    ours, theirs = TicketStatus.label_of(ticket.status), i18n.status_name(ticket.status)
    # Where the requester's word differs ("waiting on you"), staff see what was sent.
    told = "" if theirs == ours else f" (they read “{theirs.lower()}”)"
    return f"Status changed to {ours.lower()}; requester e-mailed{told}."


def _reply(ticket: Ticket) -> str:
    updates.reply(ticket, signed_in_staff(), request.form.get("body", ""))
    return f"Reply sent to {ticket.requester_email}."


def _acknowledge(ticket: Ticket) -> str:
    updates.acknowledge(ticket, signed_in_staff())
    return f"You acknowledged {ticket.reference}; paging has stopped."


def _triage(ticket: Ticket) -> str:
    decision = request.form.get("decision", "")
    updates.triage(ticket, signed_in_staff(), decision, request.form.get("reason"))
    if decision == TriageDecision.DOWNGRADE:
        return "Downgraded to a standard request; the requester was e-mailed the reason."
    return "Emergency confirmed."


def _log_time(ticket: Ticket) -> str:
    minutes = updates.parse_minutes(request.form.get("minutes"))
    billable = request.form.get("billable") in ("y", "on", "1", "true")
    updates.log_time(ticket, signed_in_staff(), minutes, request.form.get("note"), billable)
    warning = updates.not_billed_because(ticket) if billable else None
    if warning:
        return f"Logged {minutes} min as billable — warning: it will not be billed: {warning}."
    return f"Logged {minutes} min{' (billable)' if billable else ''}."


ACTIONS = {
    "status": _status,
    "reply": _reply,
    "acknowledge": _acknowledge,
    "triage": _triage,
    "time": _log_time,
}


def _assignee(value: str) -> Staff | None:
    """Read the `assignee` field: a staff id, `me`, or empty for nobody."""
    value = value.strip()
    if value == "me":
        return signed_in_staff()
    if not value:
        return None
    member = db.session.get(Staff, parse_id(value) or 0)
    if member is None:
        raise updates.UpdateError(f"There is no staff member {value!r}.")
    return member


def _changed(ticket: Ticket, change: Callable[[], str]) -> ResponseReturnValue:
    """Make one change to a ticket: back to its page with what was done, or shown again (422)
    with why it was refused and nothing of it kept."""
    try:
        message = change()
    except updates.UpdateError as exc:
        db.session.rollback()
        return render_ticket(load_ticket(ticket.reference), error=str(exc), status=422)
    flash(message)
    return redirect(url_for(".ticket_page", reference=ticket.reference), code=303)


@bp.post("/tickets/<reference>")
@login_required
def update_ticket(reference: str) -> ResponseReturnValue:
    """Add an internal note (`internal_note`) or set who has the ticket (`assignee`)."""
    ticket, me, form = load_ticket(reference), signed_in_staff(), request.form

    def change() -> str:
        if "internal_note" in form:
            conversation.add_note(ticket, me, form["internal_note"])
            return "Internal note added (staff only)."
        if "assignee" in form:
            conversation.assign(ticket, me, _assignee(form["assignee"]))
            who = ticket.assignee.name if ticket.assignee else "nobody"
            return f"{ticket.reference} is now assigned to {who}."
        raise updates.UpdateError("Send an internal_note or an assignee.")

    return _changed(ticket, change)


@bp.post("/tickets/<reference>/<action>")
@login_required
def ticket_action(reference: str, action: str) -> ResponseReturnValue:
    """Run one ticket action; show the page again with the reason when it is refused."""
    handler = ACTIONS.get(action)
    if handler is None:
        abort(404, f"Unknown action {action!r}.")
    ticket = load_ticket(reference)
    return _changed(ticket, lambda: handler(ticket))


@bp.post("/tickets/<reference>/notifications/<id:notification_id>/resend")
@login_required
def resend_notification(reference: str, notification_id: int) -> ResponseReturnValue:
    """Send a failed notification of a ticket again; say why not when it cannot be."""
    ticket = load_ticket(reference)
    row = db.session.get(Notification, notification_id)
    if row is None or row.ticket_id != ticket.id:
        abort(404, f"{ticket.reference} has no notification {notification_id}.")

    def change() -> str:
        updates.resend(ticket, signed_in_staff(), row)
        return f"Sending the {row.channel} to {row.recipient} again."

    return _changed(ticket, change)


@bp.get("/attachments/<id:attachment_id>")
@login_required
def attachment(attachment_id: int) -> Response:
    """Serve a re-encoded screenshot to signed-in staff only."""
    att = db.session.get(Attachment, attachment_id)
    if att is None:
        abort(404, "There is no such screenshot.")
    path = stored_path(att.sha256, current_app.config["UPLOAD_FOLDER"])
    if not path.is_file():
        abort(404, "The screenshot file is missing from the upload folder.")
    response = send_file(path, mimetype=att.content_type, download_name=att.filename)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/held")
@login_required
def held_mail() -> str:
    """List mail-in held because our MTA could not authenticate its sender."""
    held = db.session.scalars(sa.select(HeldMessage).order_by(HeldMessage.id)).all()
    return render_template("dashboard/held.html", held=held)


@bp.post("/held/<id:held_id>/<decision>")
@login_required
def decide_held(held_id: int, decision: str) -> ResponseReturnValue:
    """Accept a held message (file it as if authenticated) or drop it."""
    held = db.session.get(HeldMessage, held_id)
    if held is None or decision not in ("accept", "drop"):
        abort(404, "There is no such held message; someone may have decided on it already.")
    sender = held.sender
    if decision == "accept":
        flash(f"Mail from {sender} accepted: {mailin.accept_held(held, signed_in_staff())}.")
    else:
        mailin.drop_held(held, signed_in_staff())
        flash(f"Mail from {sender} dropped.")
    return redirect(url_for(".held_mail"), code=303)
