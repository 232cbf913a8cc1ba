"""The OpenAPI 3.1 document of the staff JSON API, written by hand next to the code."""

from __future__ import annotations

import copy
from typing import Any

DATETIME = {"type": "string", "format": "date-time"}
STATUSES = ["new", "in_progress", "waiting_on_client", "resolved", "closed"]
NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}
TARGET_FLAGS = {
    "type": "object",
    "properties": {"first_response": {"type": "boolean"}, "resolution": {"type": "boolean"}},
    "required": ["first_response", "resolution"],
    "additionalProperties": False,
}

SUMMARY_PROPERTIES: dict[str, Any] = {
    "reference": {"type": "string", "pattern": "^SUP-[0-9]+$", "examples": ["SUP-12"]},
    "kind": {"type": "string", "enum": ["standard", "emergency"]},
    "category": {"type": ["string", "null"], "enum": ["offline", "hacked", "broken", None]},
    "status": {"type": "string", "enum": STATUSES},
    "subject": {"type": "string"},
    "client": {"$ref": "#/components/schemas/ClientRef"},
    "site": {"$ref": "#/components/schemas/SiteRef"},
    "created_at": {**DATETIME, "description": "ISO 8601 with UTC offset."},
    "first_response_due": {**NULLABLE_DATETIME, "description": "Null without an SLA."},
    "resolution_due": {**NULLABLE_DATETIME, "description": "Null without an SLA."},
    "needed_by": {"type": ["string", "null"], "format": "date"},
    "needed_by_conflict": {
        "type": "boolean",
        "description": "The needed-by date is earlier than the SLA allows (or there is no SLA).",
    },
    "sla_plan": {"type": ["string", "null"], "description": "Plan name; null without an SLA."},
    "breach_warned": {
        **TARGET_FLAGS,
        "description": "Staff were warned that the target is about to be missed.",
    },
    "breached": {**TARGET_FLAGS, "description": "The target was missed."},
    "acknowledged_by": {
        "oneOf": [{"$ref": "#/components/schemas/StaffRef"}, {"type": "null"}],
    },
    "acknowledged_at": NULLABLE_DATETIME,
}


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": {"type": "string", "description": "HTTP status phrase."},
            "message": {"type": "string", "description": "What went wrong, for people."},
        },
        "An error.",
    ),
    "ClientRef": _object(
        {"id": {"type": "integer"}, "name": {"type": "string"}}, "The client a ticket is for."
    ),
    "SiteRef": _object(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "key": {"type": "string", "description": "The public site key."},
        },
        "The client website a ticket came from.",
    ),
    "StaffRef": _object(
        {"id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}},
        "A staff member.",
    ),
    "TicketSummary": _object(SUMMARY_PROPERTIES, "A ticket as listed in the queue."),
    "Ticket": _object(
        {
            **SUMMARY_PROPERTIES,
            "queue_position": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "Place among open requests of clients without an SLA; "
                "null for SLA clients, emergencies and closed tickets.",
            },
        },
        "One ticket.",
    ),
    "TicketPage": _object(
        {
            "tickets": {"type": "array", "items": {"$ref": "#/components/schemas/TicketSummary"}},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
        "One page of the work queue.",
    ),
}

LIST_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "status",
        "in": "query",
        "description": "One status, `open` (default: new, in_progress, waiting_on_client) "
        "or `all`.",
        "schema": {
            "type": "string",
            "enum": [
                "open",
                "all",
                "new",
                "in_progress",
                "waiting_on_client",
                "resolved",
                "closed",
            ],
        },
    },
    {
        "name": "client",
        "in": "query",
        "description": "Client id or exact name.",
        "schema": {"type": "string"},
    },
    {
        "name": "site",
        "in": "query",
        "description": "Site id or site key.",
        "schema": {"type": "string"},
    },
    {
        "name": "kind",
        "in": "query",
        "schema": {"type": "string", "enum": ["standard", "emergency"]},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "`next_cursor` of the previous page.",
        "schema": {"type": "string"},
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
    },
]

PATHS: dict[str, Any] = {
    "/tickets": {
        "get": {
            "operationId": "listTickets",
            "summary": "List tickets in queue order",
            "description": "Unacknowledged emergencies, then acknowledged open emergencies, "
            "then by effective due time (SLA due or the default target), then creation time.",
            "parameters": LIST_PARAMETERS,
            "responses": {
                "200": {
                    "description": "One page of tickets.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/TicketPage"}}
                    },
                },
                "400": _error("A filter, limit or cursor is not valid."),
                "401": _error("The API token is missing or not valid."),
                "404": _error("A client or site filter names nothing that exists."),
            },
        }
    },
    "/tickets/{reference}": {
        "get": {
            "operationId": "getTicket",
            "summary": "Show one ticket",
            "parameters": [
                {
                    "name": "reference",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "examples": ["SUP-12"]},
                }
            ],
            "responses": {
                "200": {
                    "description": "The ticket.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Ticket"}}
                    },
                },
                "401": _error("The API token is missing or not valid."),
                "404": _error("No such ticket."),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "supportwidget staff API",
        "version": "1.0.0",
        "description": "Read-only access to the support desk's work queue for staff tools. "
        "Authenticate with a staff API token from `flask --app supportwidget staff token EMAIL`.",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A staff API token.",
            }
        },
        "schemas": SCHEMAS,
    },
}


def document() -> dict[str, Any]:
    """Return a copy of the OpenAPI document (callers may change theirs)."""
    return copy.deepcopy(DOCUMENT)
