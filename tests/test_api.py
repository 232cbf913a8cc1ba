"""The staff JSON API: token auth, the queue with filters and cursors, tickets, OpenAPI."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from test_sla import GOLD, filed_at, invoke, london

from supportwidget.models import Client, Site, Staff, Ticket, db, utcnow
from supportwidget.platform.errors import Error
from supportwidget.sla import schedules as sla
from supportwidget.staff import openapi, schemas
from supportwidget.tickets import filing as tickets
from supportwidget.vocab import (
    STATUS_FILTERS,
    EmergencyCategory,
    TicketKind,
    TicketStatus,
    WatchStatus,
)

SPEC_URI = "urn:supportwidget:openapi"


@pytest.fixture
def api_client(app, client):
    """Return the test client (the API is part of every app)."""
    return client


@pytest.fixture
def token(runner, site):
    """Return a fresh API token for Alice, made by the real CLI."""
    result = runner.invoke(args=["staff", "token", "alice@agency.test"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def spec(api_client):
    """Return the served OpenAPI document, checked against the OpenAPI 3.1 schema."""
    response = api_client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate_spec(document)
    return document


def check(spec, response, path: str, status: int) -> dict:
    """Assert a real response matches what the document says that path answers."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    operation = spec["paths"][path]["get"]
    assert str(status) in operation["responses"], f"{path} does not document {status}"
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ("paths", path, "get", "responses", str(status), "content")
    )
    registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    schema = {"$ref": f"{SPEC_URI}#/{pointer}/application~1json/schema"}
    validator = Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    body = response.get_json()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors
    # Independent of what the schema says about extra or required properties:
    assert field_drift(spec, {"$ref": f"#/{pointer}/application~1json/schema"}, body) == []
    return body


def resolve(spec: dict, schema: dict) -> dict:
    """Follow a local $ref (escaped JSON pointer) to the schema it names."""
    while "$ref" in schema:
        node = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def field_drift(spec: dict, schema: dict, value, where: str = "body") -> list[str]:
    """Return the fields a body sends that its schema does not declare, and the reverse."""
    schema = resolve(spec, schema)
    options = schema.get("anyOf", schema.get("oneOf", []))
    objects = [o for o in (resolve(spec, s) for s in options) if "properties" in o]
    if objects and isinstance(value, dict):
        schema = objects[0]  # a nullable object that is not null
    if isinstance(value, list):
        items = schema["items"]
        return [d for i, item in enumerate(value) for d in field_drift(spec, items, item, where)]
    if not isinstance(value, dict):
        return []
    declared = schema["properties"]
    drift = [f"{where}.{name} is not documented" for name in value.keys() - declared.keys()]
    drift += [f"{where}.{name} is documented, not sent" for name in declared.keys() - value]
    for name in value.keys() & declared.keys():
        drift += field_drift(spec, declared[name], value[name], f"{where}.{name}")
    return drift


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def emergency(site, acknowledged: bool = False, **fields) -> Ticket:
    request = tickets.Request("Site down", "Every page is a 500.", "Jo", "jo@example.com")
    ticket = tickets.new_ticket(site, request, kind="emergency", category="offline", **fields)
    ticket.effective_due_at = ticket.created_at
    if acknowledged:
        ticket.acknowledged_at = utcnow()
        ticket.acknowledged_by = db.session.scalar(sa.select(Staff).order_by(Staff.id))
        ticket.status = "in_progress"
    ticket.update_queue_rank()
    db.session.commit()
    return ticket


@pytest.fixture
def seeded(runner, site):
    """Two clients (one on Gold), three sites, a mix of kinds and statuses."""
    invoke(runner, *GOLD)
    bakery = Client(name="Bakery", emails=["owner@bakery.test"])
    bakery_site = Site(client=bakery, name="bakery.test", url="https://bakery.test")
    shop2 = Site(client=site.client, name="shop2.test", url="https://shop2.test")
    db.session.add_all([bakery, bakery_site, shop2])
    db.session.commit()
    invoke(runner, "client", "contract", "Bakery", "--sla", "Gold")
    db.session.expire_all()
    base = london(2026, 11, 23, 9, 0)
    made = {
        "fcfs_old": filed_at(site, base),
        "gold_late": filed_at(bakery_site, base + timedelta(hours=30)),
        "gold_early": filed_at(bakery_site, base + timedelta(hours=1)),
        "fcfs_new": filed_at(shop2, base + timedelta(hours=2)),
        "resolved": filed_at(site, base + timedelta(minutes=5)),
        "acked": emergency(site, acknowledged=True),
        "unacked": emergency(bakery_site),
    }
    made["resolved"].status = "resolved"
    made["resolved"].update_queue_rank()
    db.session.commit()
    return made


def refs(body: dict) -> list[str]:
    return [t["reference"] for t in body["tickets"]]


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer sw_not-a-real-token"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/tickets/SUP-1"])
def test_missing_or_bad_token_is_a_json_401(api_client, spec, token, headers, path):
    response = api_client.get(path, headers=headers)
    documented = path.removeprefix("/api/v1").replace("SUP-1", "{reference}")
    body = check(spec, response, documented, 401)
    assert body["error"] == "Unauthorized"
    assert "token" in body["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_new_token_replaces_old_and_inactive_staff_are_refused(api_client, runner, token):
    assert api_client.get("/api/v1/tickets", headers=auth(token)).status_code == 200
    newer = runner.invoke(args=["staff", "token", "alice@agency.test"]).output.split()[-1]
    assert api_client.get("/api/v1/tickets", headers=auth(token)).status_code == 401
    assert api_client.get("/api/v1/tickets", headers=auth(newer)).status_code == 200
    alice = db.session.scalar(sa.select(Staff).where(Staff.email == "alice@agency.test"))
    assert alice.api_token_hash != newer  # stored hashed, never as given
    alice.active = False
    db.session.commit()
    assert api_client.get("/api/v1/tickets", headers=auth(newer)).status_code == 401


# --- the queue -------------------------------------------------------------------------------


def test_list_is_in_queue_order_and_matches_the_document(api_client, spec, token, seeded):
    body = check(spec, api_client.get("/api/v1/tickets", headers=auth(token)), "/tickets", 200)
    order = ["unacked", "acked", "gold_early", "fcfs_old", "fcfs_new", "gold_late"]
    assert refs(body) == [seeded[name].reference for name in order]
    assert body["next_cursor"] is None
    first = body["tickets"][0]
    assert first["kind"] == "emergency" and first["acknowledged_by"] is None
    acked = body["tickets"][1]
    assert acked["acknowledged_by"]["email"] == "alice@agency.test"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Closed work sorts after all open work.
        (
            "status=all",
            ["unacked", "acked", "gold_early", "fcfs_old", "fcfs_new", "gold_late", "resolved"],
        ),
        ("status=resolved", ["resolved"]),
        ("status=in_progress", ["acked"]),
        ("kind=emergency", ["unacked", "acked"]),
        ("kind=standard&client=Bakery", ["gold_early", "gold_late"]),
        ("client=Acme+Shop", ["acked", "fcfs_old", "fcfs_new"]),
        ("site=shop2.test-key", ["fcfs_new"]),
    ],
)  # fmt: skip
def test_filters(api_client, spec, token, seeded, query, expected):
    if "shop2.test-key" in query:
        key = db.session.scalar(sa.select(Site.site_key).where(Site.name == "shop2.test"))
        query = f"site={key}"
    response = api_client.get(f"/api/v1/tickets?{query}", headers=auth(token))
    body = check(spec, response, "/tickets", 200)
    assert refs(body) == [seeded[name].reference for name in expected]


def test_filters_by_id(api_client, token, seeded):
    bakery = db.session.scalar(sa.select(Client).where(Client.name == "Bakery"))
    site_id = seeded["fcfs_new"].site_id
    by_client = api_client.get(f"/api/v1/tickets?client={bakery.id}", headers=auth(token))
    by_site = api_client.get(f"/api/v1/tickets?site={site_id}", headers=auth(token))
    assert set(refs(by_client.get_json())) == {
        seeded[n].reference for n in ("unacked", "gold_early", "gold_late")
    }
    assert refs(by_site.get_json()) == [seeded["fcfs_new"].reference]


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _naive_cursor() -> str:
    raw = json.dumps([2, datetime(2026, 1, 1).isoformat(), 1]).encode()
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=pending", "status must be one of"),
        ("kind=urgent", "kind must be standard or emergency"),
        ("limit=0", "limit must be a whole number from 1 to 100"),
        ("limit=101", "limit must be a whole number from 1 to 100"),
        ("limit=ten", "limit must be a whole number from 1 to 100"),
        ("limit=\u00b2", "limit must be a whole number from 1 to 100"),
        ("cursor=not-a-cursor", "cursor is not valid"),
        ("cursor=" + base64.urlsafe_b64encode(b'"x"').decode(), "cursor is not valid"),
        ("cursor=" + _naive_cursor(), "cursor is not valid"),
        ("cursor=" + _b64('[1e400, "2026-01-01T00:00:00+00:00", 1]'), "cursor is not valid"),
        ("cursor=" + _b64('[1, "2026-01-01T00:00:00+00:00", 1e30]'), "cursor is not valid"),
        ("cursor=" + _b64("[" * 5000), "cursor is not valid"),
    ],
)
def test_bad_parameters_are_a_json_400(api_client, spec, token, seeded, query, message):
    response = api_client.get(f"/api/v1/tickets?{query}", headers=auth(token))
    body = check(spec, response, "/tickets", 400)
    assert message in body["message"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("client=Nobody", "No client with id or name 'Nobody'"),
        ("site=nokey", "No site with id or key 'nokey'"),
    ],
)
def test_filters_naming_nothing_are_a_json_404(api_client, spec, token, seeded, query, message):
    response = api_client.get(f"/api/v1/tickets?{query}", headers=auth(token))
    body = check(spec, response, "/tickets", 404)
    assert message in body["message"]


def test_empty_filters_mean_no_filter(api_client, token, seeded):
    everything = api_client.get("/api/v1/tickets", headers=auth(token)).json
    empty = api_client.get("/api/v1/tickets?client=&site=&cursor=", headers=auth(token))
    assert empty.status_code == 200 and empty.json == everything


def test_walking_every_page_returns_each_open_ticket_once_in_order(api_client, spec, token, site):
    invoke_start = london(2026, 11, 2, 9, 0)
    for n in range(23):
        # Out-of-order creation times: the queue must not follow insertion order.
        filed_at(site, invoke_start + timedelta(minutes=(n * 37) % 23 * 10))
    closed = filed_at(site, invoke_start)
    closed.status = "closed"
    closed.update_queue_rank()
    emergency(site)
    db.session.commit()

    everything = api_client.get("/api/v1/tickets?limit=100", headers=auth(token)).get_json()
    assert len(everything["tickets"]) == 24 and everything["next_cursor"] is None
    seen, cursor, pages = [], None, 0
    while True:
        query = "limit=5" + (f"&cursor={cursor}" if cursor else "")
        response = api_client.get(f"/api/v1/tickets?{query}", headers=auth(token))
        body = check(spec, response, "/tickets", 200)
        seen += refs(body)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert seen == refs(everything)
    assert len(set(seen)) == 24 and closed.reference not in seen
    open_refs = db.session.scalars(sa.select(Ticket).where(Ticket.status != "closed")).all()
    assert set(seen) == {t.reference for t in open_refs}
    dues = [t.effective_due_at for t in map(tickets.find_by_reference, seen[1:])]
    assert dues == sorted(dues)


# --- one ticket --------------------------------------------------------------------------------


def test_ticket_detail_of_a_client_without_sla(api_client, spec, token, seeded):
    ticket = seeded["fcfs_new"]
    response = api_client.get(f"/api/v1/tickets/{ticket.reference}", headers=auth(token))
    body = check(spec, response, "/tickets/{reference}", 200)
    assert body["reference"] == ticket.reference
    assert (body["kind"], body["category"], body["status"]) == ("standard", None, "new")
    assert body["client"]["name"] == "Acme Shop" and body["site"]["name"] == "shop2.test"
    assert body["sla_plan"] is None
    assert body["first_response_due"] is None and body["resolution_due"] is None
    # Its place in the staff queue, the order the list is in: both emergencies, gold_early and
    # fcfs_old are ahead; the resolved one no longer counts.
    assert body["queue_position"] == 5
    assert body["queue_position"] == sla.queue_position(ticket)
    listed = refs(api_client.get("/api/v1/tickets?limit=100", headers=auth(token)).get_json())
    assert listed.index(ticket.reference) + 1 == body["queue_position"]
    assert datetime.fromisoformat(body["created_at"]) == london(2026, 11, 23, 11, 0)
    assert body["created_at"].endswith("+00:00")
    assert body["breached"] == {"first_response": False, "resolution": False}
    assert body["acknowledged_by"] is None and body["acknowledged_at"] is None


def test_ticket_detail_of_an_sla_client(api_client, spec, token, seeded):
    ticket = seeded["gold_early"]
    ticket.breach_warned, ticket.breached = ["first_response"], ["first_response"]
    ticket.needed_by = london(2026, 11, 24, 0, 0).date()
    db.session.commit()
    response = api_client.get(f"/api/v1/tickets/{ticket.reference.lower()}", headers=auth(token))
    body = check(spec, response, "/tickets/{reference}", 200)
    assert body["sla_plan"] == "Gold" and body["queue_position"] is None
    assert datetime.fromisoformat(body["first_response_due"]) == london(2026, 11, 23, 14, 0)
    assert datetime.fromisoformat(body["resolution_due"]) == london(2026, 11, 24, 17, 30)
    assert body["needed_by"] == "2026-11-24"
    assert body["breach_warned"] == {"first_response": True, "resolution": False}
    assert body["breached"] == {"first_response": True, "resolution": False}


def test_acknowledged_emergency_detail(api_client, spec, token, seeded):
    ticket = seeded["acked"]
    response = api_client.get(f"/api/v1/tickets/{ticket.reference}", headers=auth(token))
    body = check(spec, response, "/tickets/{reference}", 200)
    assert (body["kind"], body["category"]) == ("emergency", "offline")
    assert body["acknowledged_by"]["name"] == "Alice"
    assert datetime.fromisoformat(body["acknowledged_at"]) == ticket.acknowledged_at
    assert body["queue_position"] is None


@pytest.mark.parametrize(
    "reference",
    ["SUP-999", "nonsense", "SUP-", "SUP-99999999999", "SUP-99999999999999999999", "SUP-\u00b2"],
)
def test_unknown_ticket_is_a_json_404(api_client, spec, token, seeded, reference):
    response = api_client.get(f"/api/v1/tickets/{reference}", headers=auth(token))
    body = check(spec, response, "/tickets/{reference}", 404)
    assert body["error"] == "Not Found" and reference in body["message"]


def test_openapi_document_describes_both_endpoints_and_bearer_auth(spec):
    assert spec["openapi"].startswith("3.1")
    assert {"/tickets", "/tickets/{reference}"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    params = {p["name"] for p in spec["paths"]["/tickets"]["get"]["parameters"]}
    assert params == {"status", "client", "site", "kind", "cursor", "limit"}


# --- the document is generated from the models ---------------------------------------------


def test_responses_carry_exactly_the_documented_fields(api_client, spec, token, seeded):
    page = api_client.get("/api/v1/tickets?status=all", headers=auth(token))
    assert len(check(spec, page, "/tickets", 200)["tickets"]) == len(seeded)
    for ticket in seeded.values():  # acknowledged or not, with or without an SLA
        response = api_client.get(f"/api/v1/tickets/{ticket.reference}", headers=auth(token))
        check(spec, response, "/tickets/{reference}", 200)
    # The comparison itself catches a field on either side only:
    ticket_schema = {"$ref": "#/components/schemas/Ticket"}
    body = response.get_json()
    assert field_drift(spec, ticket_schema, {**body, "priority": "high"}) == [
        "body.priority is not documented"
    ]
    del body["site"]["key"]
    assert field_drift(spec, ticket_schema, body) == ["body.site.key is documented, not sent"]


def closed_sets() -> dict[str, tuple[str, ...]]:
    """Return each enum the API uses, from the one place its values are defined."""
    return {
        "TicketStatus": TicketStatus.values(),
        "TicketKind": TicketKind.values(),
        "EmergencyCategory": EmergencyCategory.values(),
        "StatusFilter": tuple(value.value for value in STATUS_FILTERS),
        "WatchStatus": WatchStatus.values(),
    }


def test_document_is_generated_from_the_models(spec):
    components = spec["components"]["schemas"]
    bodies = [
        model
        for model in vars(schemas).values()
        if isinstance(model, type) and issubclass(model, schemas.Body) and model is not schemas.Body
    ]
    models = {model.__name__: model for model in (*bodies, Error)}
    # Nothing written by hand: every component is a model or one of the closed sets.
    assert set(components) == set(models) | set(closed_sets())
    for name, model in models.items():
        generated = model.model_json_schema(
            ref_template=openapi.REF,
            mode="serialization",
            schema_generator=openapi.SchemaGenerator,
        )
        generated.pop("$defs", None)
        assert components[name] == generated, name
    for name, values in closed_sets().items():
        assert components[name]["enum"] == list(values), name
    parameters = spec["paths"]["/tickets"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == list(schemas.TicketQuery.model_fields)


def test_every_documented_parameter_value_is_accepted_and_no_other(api_client, spec, token, seeded):
    parameters = {p["name"]: p["schema"] for p in spec["paths"]["/tickets"]["get"]["parameters"]}
    for name in ("status", "kind"):
        for value in resolve(spec, parameters[name])["enum"]:
            response = api_client.get(f"/api/v1/tickets?{name}={value}", headers=auth(token))
            check(spec, response, "/tickets", 200)
        response = api_client.get(f"/api/v1/tickets?{name}=unknown", headers=auth(token))
        check(spec, response, "/tickets", 400)
    limit = parameters["limit"]
    for value, status in [
        (limit["minimum"], 200),
        (limit["maximum"], 200),
        (limit["minimum"] - 1, 400),
        (limit["maximum"] + 1, 400),
    ]:
        response = api_client.get(f"/api/v1/tickets?limit={value}", headers=auth(token))
        check(spec, response, "/tickets", status)
    default = api_client.get("/api/v1/tickets", headers=auth(token))
    assert (
        default.json
        == api_client.get(
            f"/api/v1/tickets?status={parameters['status']['default']}&limit={limit['default']}",
            headers=auth(token),
        ).json
    )


def test_text_parameters_say_they_refuse_nul_characters(spec):
    # schemathesis makes "valid" requests from these schemas; one holding a NUL got a 400.
    parameters = spec["paths"]["/tickets"]["get"]["parameters"]
    texts = [p for p in parameters if resolve(spec, p["schema"]).get("type") == "string"]
    assert {p["name"] for p in texts} >= {"client", "site", "cursor"}
    for parameter in texts:
        validator = Draft202012Validator(resolve(spec, parameter["schema"]))
        assert not validator.is_valid("Acme\x00Shop"), parameter["name"]
        if "enum" not in resolve(spec, parameter["schema"]):
            assert validator.is_valid("Acme Shop"), parameter["name"]


@pytest.mark.parametrize(
    ("path", "documented"),
    [
        ("/api/v1/tickets", "/tickets"),
        ("/api/v1/tickets/SUP-1", "/tickets/{reference}"),
        ("/api/v1/openapi.json", "/openapi.json"),
    ],
)
def test_every_operation_documents_the_errors_any_request_can_meet(
    app, api_client, spec, token, path, documented
):
    response = api_client.get(f"{path}?client=Acme%00", headers=auth(token))
    assert "NUL character" in check(spec, response, documented, 400)["message"]
    app.config["MAX_CONTENT_LENGTH"] = 64
    response = api_client.get(
        path,
        data={"note": "x" * 100},
        content_type="application/x-www-form-urlencoded",
        headers=auth(token),
    )
    check(spec, response, documented, 413)
