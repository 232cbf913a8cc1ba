"""The OpenAPI 3.1 document of the staff API, generated from its models (schemas.py).

Only the operations are described here, in one table; every schema comes from a model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from supportwidget.platform.errors import Error
from supportwidget.staff import schemas

REF = "#/components/schemas/{model}"
# Any request can meet these: the NUL check and the body size limit run before every view.
NUL_CHARACTER = "A query parameter or form field holds a NUL character."
TOO_LARGE = "The request body is larger than MAX_CONTENT_LENGTH."
UNAUTHORIZED = "The API token is missing or not valid."
SERVER_ERROR = "The database failed; nothing was changed."


@dataclass(frozen=True)
class Operation:
    """One GET operation: its parameters, its 200 body and every error it can answer."""

    path: str
    operation_id: str
    summary: str
    ok: str  # what the 200 answer is
    body: type[BaseModel] | None  # None: a JSON object of no fixed shape
    errors: dict[int, str]
    parameters: tuple[tuple[type[BaseModel], str], ...] = ()  # (model, "query" or "path")
    description: str | None = None
    public: bool = False


OPERATIONS = (
    Operation(
        "/tickets",
        "listTickets",
        "List tickets in queue order",
        description="Unacknowledged emergencies, then acknowledged open emergencies, "
        "then by effective due time (SLA due or the default target), then creation time.",
        parameters=((schemas.TicketQuery, "query"),),
        ok="One page of tickets.",
        body=schemas.TicketPage,
        errors={
            400: "A filter, limit or cursor is not valid, or a parameter holds a NUL character.",
            401: UNAUTHORIZED,
            404: "A client or site filter names nothing that exists.",
            413: TOO_LARGE,
            500: SERVER_ERROR,
        },
    ),
    Operation(
        "/tickets/{reference}",
        "getTicket",
        "Show one ticket",
        parameters=((schemas.TicketPath, "path"),),
        ok="The ticket.",
        body=schemas.Ticket,
        errors={
            400: NUL_CHARACTER,
            401: UNAUTHORIZED,
            404: "No such ticket.",
            413: TOO_LARGE,
            500: SERVER_ERROR,
        },
    ),
    Operation(
        "/sites",
        "listSites",
        "List sites with their uptime status",
        ok="Every site, by name.",
        body=schemas.SiteList,
        errors={400: NUL_CHARACTER, 401: UNAUTHORIZED, 413: TOO_LARGE, 500: SERVER_ERROR},
    ),
    Operation(
        "/openapi.json",
        "getOpenApi",
        "This document",
        public=True,
        ok="The OpenAPI 3.1 document.",
        body=None,
        errors={400: NUL_CHARACTER, 413: TOO_LARGE},
    ),
)

INFO = {
    "title": "supportwidget staff API",
    "version": "1.0.0",
    "description": "Read-only access to the support desk's work queue for staff tools. "
    "Authenticate with a staff API token from `flask --app supportwidget staff token EMAIL`.",
}
BEARER = {"type": "http", "scheme": "bearer", "description": "A staff API token."}
AUTHENTICATE = {
    "description": "How to authenticate: `Bearer`.",
    "required": True,
    "schema": {"type": "string"},
}


class SchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON Schema, without a title on every property (its name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Return every model the document refers to: bodies as sent, parameters as read."""
    bodies = [op.body for op in OPERATIONS if op.body is not None]
    inputs = [model for op in OPERATIONS for model, _ in op.parameters]
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "serialization") for m in bodies]
    models.append((Error, "serialization"))
    return models + [(m, "validation") for m in inputs]


def _parameter(name: str, schema: dict[str, Any], location: str, required: bool) -> dict[str, Any]:
    """Return one parameter from a property of its model's schema."""
    schema = dict(schema)
    description = schema.pop("description", None)
    if "default" in schema and schema["default"] is None:
        # A query string cannot carry null: an optional parameter is simply left out.
        del schema["default"]
        (present,) = [option for option in schema.pop("anyOf") if option != {"type": "null"}]
        schema.update(present)
    parameter: dict[str, Any] = {"name": name, "in": location, "schema": schema}
    if required:
        parameter["required"] = True
    if description:
        parameter["description"] = description
    return parameter


def _parameters(op: Operation, components: dict[str, Any]) -> list[dict[str, Any]]:
    """Return an operation's parameters; their models are not components of their own."""
    found = []
    for model, location in op.parameters:
        schema = components.pop(model.__name__)
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            found.append(_parameter(name, prop, location, name in required))
    return found


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return a response object whose body is JSON of the given schema."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(op: Operation) -> dict[str, Any]:
    """Return the 200 answer and every error answer of an operation."""
    body = {"$ref": REF.format(model=op.body.__name__)} if op.body else {"type": "object"}
    responses = {"200": _json(op.ok, body)}
    for status, description in sorted(op.errors.items()):
        responses[str(status)] = _json(description, {"$ref": REF.format(model=Error.__name__)})
    if "401" in responses:
        responses["401"]["headers"] = {"WWW-Authenticate": AUTHENTICATE}
    return responses


def _operation(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    """Return the OpenAPI operation object of one row of OPERATIONS."""
    operation: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        operation["description"] = op.description
    if op.public:
        operation["security"] = []
    if parameters := _parameters(op, components):
        operation["parameters"] = parameters
    operation["responses"] = _responses(op)
    return operation


@cache
def _document() -> dict[str, Any]:
    """Build the document once: components from the models, paths from OPERATIONS."""
    _, top = models_json_schema(_models(), ref_template=REF, schema_generator=SchemaGenerator)
    components = top["$defs"]
    paths = {op.path: {"get": _operation(op, components)} for op in OPERATIONS}
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {"securitySchemes": {"bearerAuth": BEARER}, "schemas": components},
    }


def document() -> dict[str, Any]:
    """Return a copy of the OpenAPI document (callers may change theirs)."""
    return copy.deepcopy(_document())
