"""Read-only JSON API for staff tools: the work queue and single tickets, Bearer token auth."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel
from sqlalchemy.orm import selectinload

from supportwidget.models import Client, Site, Staff, Ticket, db, parse_id
from supportwidget.platform.errors import error_response
from supportwidget.sla import schedules as sla
from supportwidget.sla import workqueue
from supportwidget.staff import schemas
from supportwidget.staff.auth import hash_token
from supportwidget.staff.openapi import document
from supportwidget.tickets import filing as tickets
from supportwidget.vocab import STATUS_FILTERS, TicketKind
from supportwidget.watch import overview

bp = Blueprint("api", __name__, url_prefix="/api/v1")

P = ParamSpec("P")
R = TypeVar("R")
# Cursor fields are checked before they reach SQL: a forged one must be a 400, not a 500.


class BadRequest(ValueError):
    """A query parameter the API cannot use; its text is shown to the caller."""


class NotFound(LookupError):
    """A filter naming a client or site that does not exist."""


def unauthorized(message: str) -> Response:
    """Return a 401 that tells the client how to authenticate."""
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="supportwidget"'
    return response


def staff_from_token(header: str | None) -> Staff | None:
    """Return the active staff member whose API token the Authorization header carries."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    digest = hash_token(token)
    # Tokens are long and random, so looking up their hash leaks nothing through timing.
    member = db.session.scalar(sa.select(Staff).where(Staff.api_token_hash == digest))
    return member if member is not None and member.active else None


def token_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Let a view run only for a staff member with a valid API token."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        header = request.headers.get("Authorization")
        if not header:
            return unauthorized(
                "Send a staff API token: 'Authorization: Bearer <token>' "
                "(create one with `flask --app supportwidget staff token EMAIL`)."
            )
        member = staff_from_token(header)
        if member is None:
            return unauthorized("The API token is not valid. Create a new one with `staff token`.")
        g.api_staff = member
        return view(*args, **kwargs)

    return wrapped


def preload(rows: list[Ticket]) -> list[Any]:
    """Load the page's sites, clients and acknowledging staff in three queries, not per row.

    The caller keeps the returned objects alive: the session's identity map holds them
    only weakly, and lazy loads find them there only while someone references them.
    """
    site_ids = {t.site_id for t in rows}
    staff_ids = {t.acknowledged_by_id for t in rows if t.acknowledged_by_id is not None}
    loaded: list[Any] = []
    if site_ids:
        query = sa.select(Site).options(selectinload(Site.client)).where(Site.id.in_(site_ids))
        loaded += db.session.scalars(query).all()
    if staff_ids:
        loaded += db.session.scalars(sa.select(Staff).where(Staff.id.in_(staff_ids))).all()
    return loaded


def ticket_detail(ticket: Ticket) -> schemas.Ticket:
    """Return a ticket as the detail endpoint shows it, with its FCFS queue position."""
    summary = schemas.TicketSummary.model_validate(ticket)
    return schemas.Ticket(**dict(summary), queue_position=sla.queue_position(ticket))


def answer(body: BaseModel) -> Response:
    """Return a 200 whose body is exactly what its model (and so the document) declares."""
    return jsonify(body.model_dump(mode="json"))


def parse_filters(args: Any) -> workqueue.Filters:
    """Return the list filters from query parameters, or raise BadRequest."""
    status, kind = args.get("status"), args.get("kind")
    if status is not None and status not in STATUS_FILTERS:
        choices = ", ".join(STATUS_FILTERS)
        raise BadRequest(f"status must be one of {choices}, not {status!r}.")
    if kind is not None and kind not in TicketKind.values():
        raise BadRequest(f"kind must be {TicketKind.listing()}, not {kind!r}.")
    # An empty filter means no filter; one naming nothing that exists is a 404.
    client, site = args.get("client") or None, args.get("site") or None
    if client is not None and not _exists(Client, client, Client.name):
        raise NotFound(f"No client with id or name {client!r}.")
    if site is not None and not _exists(Site, site, Site.site_key):
        raise NotFound(f"No site with id or key {site!r}.")
    return workqueue.Filters(status=status, client=client, site=site, kind=kind)


def _exists(model: Any, value: str, column: Any) -> bool:
    match = column == value
    if (number := parse_id(value)) is not None:
        match = sa.or_(match, model.id == number)
    return db.session.scalar(sa.select(sa.exists().where(match))) or False


def parse_limit(raw: str | None) -> int:
    """Return the page size (1 to 100, default 50), or raise BadRequest."""
    if raw is None:
        return schemas.DEFAULT_LIMIT
    limit = parse_id(raw)
    if limit is None or not 1 <= limit <= schemas.MAX_LIMIT:
        raise BadRequest(
            f"limit must be a whole number from 1 to {schemas.MAX_LIMIT}, not {raw!r}."
        )
    return limit


def check_cursor(cursor: str | None) -> str | None:
    """Return a cursor made by us, or raise BadRequest."""
    if cursor is None:
        return None
    try:
        workqueue.decode_cursor(cursor)
    except workqueue.CursorError as exc:
        raise BadRequest(str(exc)) from None
    return cursor


@bp.get("/tickets")
@token_required
def list_tickets() -> Response:
    """List tickets in queue order, one page at a time."""
    try:
        filters = parse_filters(request.args)
        limit = parse_limit(request.args.get("limit"))
        cursor = check_cursor(request.args.get("cursor") or None)
    except BadRequest as exc:
        return error_response(400, str(exc))
    except NotFound as exc:
        return error_response(404, str(exc))
    rows, next_cursor = workqueue.work_queue(filters, limit=limit, after=cursor)
    related = preload(rows)
    summaries = [schemas.TicketSummary.model_validate(ticket) for ticket in rows]
    del related
    return answer(schemas.TicketPage(tickets=summaries, next_cursor=next_cursor))


@bp.get("/tickets/<reference>")
@token_required
def get_ticket(reference: str) -> Response:
    """Show one ticket by reference (SUP-12)."""
    ticket = tickets.find_by_reference(reference)
    if ticket is None:
        return error_response(404, f"No ticket {reference!r}.")
    return answer(ticket_detail(ticket))


@bp.get("/sites")
@token_required
def list_sites() -> Response:
    """List every site with how the uptime watch last found it."""
    sites = db.session.scalars(
        sa.select(Site).options(selectinload(Site.client)).order_by(Site.name, Site.id)
    ).all()
    ids = [site.id for site in sites]
    down, uptimes = overview.down_site_ids(ids), overview.uptimes_24h(ids)
    return answer(
        schemas.SiteList(
            sites=[
                schemas.SiteStatus(
                    id=site.id,
                    name=site.name,
                    url=site.watched_url,
                    client=schemas.ClientRef.model_validate(site.client),
                    status=overview.status_of(site, site.id in down),
                    uptime_24h=uptimes[site.id],
                    last_checked_at=site.watch_checked_at,
                )
                for site in sites
            ]
        )
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI 3.1 description of this API (public, like any API docs)."""
    return jsonify(document())
