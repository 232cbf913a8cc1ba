"""The staff work queue: one order for the dashboard and the API, keyset-paginated."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from supportwidget.models import MAX_ID, Client, OpenTicketCount, Site, Ticket, db, parse_id
from supportwidget.vocab import QueueScope

BAD_CURSOR = "The cursor is not valid; start again from the first page."


class CursorError(ValueError):
    """A pagination cursor that was not made by us."""


@dataclass
class Filters:
    # The queue shows open work by default; "all" adds closed work; one status narrows it.
    status: str | None = None  # vocab.STATUS_FILTERS
    client: str | None = None  # client id or name
    site: str | None = None  # site id or site key
    kind: str | None = None  # vocab.TicketKind
    assignee_id: int | None = None  # only tickets this staff member took ("mine")


def _order_key(ticket: Ticket) -> tuple[int, datetime, int]:
    return (ticket.queue_rank, ticket.effective_due_at or ticket.created_at, ticket.id)


def encode_cursor(ticket: Ticket) -> str:
    """Return an opaque cursor pointing just after a ticket."""
    rank, due, ticket_id = _order_key(ticket)
    raw = json.dumps([rank, due.isoformat(), ticket_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, datetime, int]:
    """Return the position a cursor points after, or raise CursorError."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, due, ticket_id = json.loads(raw)
        position = int(rank), datetime.fromisoformat(due), int(ticket_id)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise CursorError(BAD_CURSOR) from exc
    # Only what encode_cursor makes: rank 0-9, an aware due time, an id a BIGINT holds.
    if position[1].tzinfo is None or not (0 <= position[0] <= 9 and 0 <= position[2] <= MAX_ID):
        raise CursorError(BAD_CURSOR)
    return position


def _filtered(query: sa.Select, filters: Filters) -> sa.Select:
    status = filters.status or QueueScope.OPEN
    if status == QueueScope.OPEN:
        # Same meaning as the open statuses, but served by the queue index (rank 9 = closed).
        query = query.where(Ticket.queue_rank < 9)
    elif status != QueueScope.ALL:
        query = query.where(Ticket.status == status)
    if filters.kind:
        query = query.where(Ticket.kind == filters.kind)
    if filters.assignee_id is not None:
        query = query.where(Ticket.assignee_id == filters.assignee_id)
    if filters.site:
        site_match = Site.site_key == filters.site
        if (site_id := parse_id(filters.site)) is not None:
            site_match = sa.or_(site_match, Site.id == site_id)
        query = query.where(Ticket.site_id.in_(sa.select(Site.id).where(site_match)))
    if filters.client:
        client_match = Client.name == filters.client
        if (client_id := parse_id(filters.client)) is not None:
            client_match = sa.or_(client_match, Client.id == client_id)
        clients = sa.select(Client.id).where(client_match)
        query = query.where(
            Ticket.site_id.in_(sa.select(Site.id).where(Site.client_id.in_(clients)))
        )
    return query


def position(ticket: Ticket) -> int:
    """Return a ticket's place in the staff work queue (1: next), counted in the queue's order.

    Counted from the back: the open tickets (a count the database keeps) less those behind
    this one, so a new ticket costs the few filed or due after it, not the backlog ahead.
    The ticket's own row may not be written yet, or hold older values (a downgrade being
    composed): it is left out of the count and placed where its values in memory put it.
    """
    rank, due, ticket_id = _order_key(ticket)
    behind = sa.select(sa.func.count(Ticket.id)).where(
        Ticket.queue_rank < 9,
        Ticket.id != ticket_id,
        sa.tuple_(Ticket.queue_rank, Ticket.effective_due_at, Ticket.id) > (rank, due, ticket_id),
    )
    # Nor is a ticket of the same rank without a due time ahead (the comparison is unknown).
    undated = sa.select(sa.func.count(Ticket.id)).where(
        Ticket.queue_rank == rank, Ticket.effective_due_at.is_(None), Ticket.id != ticket_id
    )
    # Its own stored row, if open, is in the total too.
    itself = sa.select(sa.func.count(Ticket.id)).where(
        Ticket.id == ticket_id, Ticket.queue_rank < 9
    )
    total = sa.select(sa.func.coalesce(sa.func.sum(OpenTicketCount.open_tickets), 0))
    ahead = sa.select(
        total.scalar_subquery()
        - behind.scalar_subquery()
        - undated.scalar_subquery()
        - itself.scalar_subquery()
    )
    return int(db.session.scalar(ahead) or 0) + 1


def work_queue(
    filters: Filters, limit: int = 50, after: str | None = None
) -> tuple[list[Ticket], str | None]:
    """Return one page of tickets in queue order and the cursor of the next page."""
    query = _filtered(sa.select(Ticket), filters)
    if after:
        rank, due, ticket_id = decode_cursor(after)
        query = query.where(
            sa.tuple_(Ticket.queue_rank, Ticket.effective_due_at, Ticket.id)
            > (rank, due, ticket_id)
        )
    query = query.order_by(Ticket.queue_rank, Ticket.effective_due_at, Ticket.id).limit(limit + 1)
    rows = list(db.session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)
