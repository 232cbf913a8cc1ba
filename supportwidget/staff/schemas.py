"""What the staff API answers and accepts, defined once.

The views serialise every body through these models and the OpenAPI document is generated
from them (openapi.py), so the two cannot drift. Fields are read from the ORM objects by
name: a Ticket column shown to staff in the API is one line in TicketSummary.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from supportwidget.vocab import (
    STATUS_FILTERS,
    EmergencyCategory,
    QueueScope,
    TicketKind,
    TicketStatus,
    WatchStatus,
)

# The closed sets come from vocab.py: the API adds no values of its own. The status filter
# is a scope or one status, two sets in one enum. (mypy reads an enum's members only from a
# literal list; these are computed from vocab.py on purpose, so it cannot list them.)
StatusFilter = StrEnum(  # type: ignore[misc]
    "StatusFilter", [(value, value) for value in STATUS_FILTERS]
)

DEFAULT_LIMIT, MAX_LIMIT = 50, 100

# Python's ISO 8601 ("+00:00"), as the API always wrote it; Pydantic's own would be "Z".
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
# PostgreSQL cannot store or compare a NUL, so the API refuses one (400) in any parameter.
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]


class Body(BaseModel):
    """A JSON object of the API: read from our objects, every field always sent, no others."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, validate_by_name=True)


class ClientRef(Body):
    """The client a ticket is for."""

    id: int
    name: str


class SiteRef(Body):
    """The client website a ticket came from."""

    id: int
    name: str
    url: str
    key: str = Field(validation_alias="site_key", description="The public site key.")


class StaffRef(Body):
    """A staff member."""

    id: int
    name: str
    email: str


class TargetFlags(Body):
    """One flag per SLA target."""

    # Named like vocab.SlaTarget's values (tests/test_vocab.py checks they agree).
    first_response: bool
    resolution: bool


def target_flags(value: Any) -> Any:
    """Turn the list of target names a ticket stores into one flag per target."""
    if value is None or isinstance(value, list):
        return {name: name in (value or []) for name in TargetFlags.model_fields}
    return value


Flags = Annotated[TargetFlags, BeforeValidator(target_flags)]


class TicketSummary(Body):
    """A ticket as listed in the queue."""

    reference: str = Field(pattern=r"^SUP-[0-9]+$", examples=["SUP-12"])
    kind: TicketKind
    category: EmergencyCategory | None
    status: TicketStatus
    subject: str
    client: ClientRef = Field(validation_alias=AliasPath("site", "client"))
    site: SiteRef
    created_at: Timestamp = Field(description="ISO 8601 with UTC offset.")
    first_response_due: Timestamp | None = Field(description="Null without an SLA.")
    resolution_due: Timestamp | None = Field(description="Null without an SLA.")
    needed_by: date | None
    needed_by_conflict: bool = Field(
        description="The needed-by date is earlier than the SLA allows (or there is no SLA)."
    )
    sla_plan: str | None = Field(
        validation_alias="sla_plan_name", description="Plan name; null without an SLA."
    )
    breach_warned: Flags = Field(
        description="Staff were warned that the target is about to be missed."
    )
    breached: Flags = Field(description="The target was missed.")
    acknowledged_by: StaffRef | None
    acknowledged_at: Timestamp | None


class Ticket(TicketSummary):
    """One ticket."""

    queue_position: Annotated[int, Field(ge=1)] | None = Field(
        description="Place among open requests of clients without an SLA; "
        "null for SLA clients, emergencies and closed tickets."
    )


class TicketPage(Body):
    """One page of the work queue."""

    tickets: list[TicketSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class SiteStatus(Body):
    """A client site as the uptime watch last found it."""

    id: int
    name: str
    url: str = Field(description="The address the uptime watch checks.")
    client: ClientRef
    status: WatchStatus = Field(
        description="`down`: an incident it has not come back from, or failing checks; "
        "`unknown`: not checked yet; `off`: not watched."
    )
    uptime_24h: Annotated[float, Field(ge=0, le=1)] | None = Field(
        description="Share of good checks over the last 24 hours; null without checks."
    )
    last_checked_at: Timestamp | None


class SiteList(Body):
    """Every site, by name."""

    sites: list[SiteStatus]


class TicketQuery(BaseModel):
    """The query parameters of the ticket list; each may be left out."""

    status: StatusFilter = Field(
        StatusFilter(QueueScope.OPEN),
        description=f"One status, `{QueueScope.OPEN}` (the default: "
        f"{', '.join(TicketStatus.open())}) or `{QueueScope.ALL}`.",
    )
    client: Text = Field("", description="Client id or exact name; empty means any.")
    site: Text = Field("", description="Site id or site key; empty means any.")
    kind: TicketKind | None = Field(None, description="Only this kind; both when left out.")
    cursor: Text = Field("", description="`next_cursor` of the previous page.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class TicketPath(BaseModel):
    """The path parameter naming one ticket."""

    reference: str = Field(examples=["SUP-12"], description="In any case: sup-12 works too.")
