"""schemathesis against /api/v1/openapi.json: generated requests never crash the API."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from supportwidget.models import Client, Site, Staff, db
from supportwidget.staff.auth import hash_token
from supportwidget.tickets import filing as tickets

from conftest import make_app

TOKEN = "sw_schemathesis-token"


def api_app():
    """An app on its own SQLite file with one staff token and a few tickets to list."""
    folder = Path(tempfile.mkdtemp(prefix="sw-schemathesis-"))
    app = make_app(f"sqlite:///{folder / 'api.sqlite'}", folder)  # mail goes to .eml files
    with app.app_context():
        acme = Client(name="Acme Shop", emails=["owner@acme.test"])
        site = Site(client=acme, name="acme.test", url="https://acme.test", allowed_origins=[])
        api_user = Staff(name="Api", email="api@agency.test", api_token_hash=hash_token(TOKEN))
        db.session.add_all([acme, site, api_user])
        db.session.commit()
        for n in range(3):
            request = tickets.Request(
                subject=f"Request {n}",
                name="Jane",
                description="Something is broken somewhere.",
                email="jane@example.com",
            )
            tickets.open_standard_request(site, request)
        db.session.remove()
    return app


APP = api_app()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)


@schema.auth()
class StaffToken:
    """Authenticate generated requests as a staff member; schemathesis also tries without."""

    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_errors(case):
    # A cursor is opaque: only ones the API made are valid, so a made-up one is rightly a 400.
    made_up_cursor = bool((case.query or {}).get("cursor"))
    excluded = [positive_data_acceptance] if made_up_cursor else []
    with APP.app_context():
        case.call_and_validate(excluded_checks=excluded)
