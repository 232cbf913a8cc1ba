"""Logs: a request id on every answer and log line; JSON lines on request; no secrets."""

from __future__ import annotations

import json
import logging

from supportwidget.platform import logs

from conftest import form_token, make_app, running, seed_site, standard_fields
from vonage_standin import API_KEY, API_SECRET


def test_every_response_carries_a_request_id_and_keeps_a_sane_one(client):
    generated = client.get("/healthz").headers["X-Request-Id"]
    assert len(generated) == 32
    kept = client.get("/healthz", headers={"X-Request-Id": "edge-1234abcd"})
    assert kept.headers["X-Request-Id"] == "edge-1234abcd"
    forged = client.get("/healthz", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert forged.headers["X-Request-Id"] != "<script>alert(1)</script>"


def test_json_log_lines_carry_the_request_id(app):
    handler_output = []

    class Capture(logging.Handler):
        def emit(self, record):
            handler_output.append(self.format(record))

    capture = Capture()
    capture.addFilter(logs.RequestIdFilter())
    capture.setFormatter(logs.JsonFormatter())
    logging.getLogger("supportwidget").addHandler(capture)
    try:
        with app.test_request_context("/", headers={"X-Request-Id": "req-00000001"}):
            app.preprocess_request()
            logging.getLogger("supportwidget.test").warning("hello %s", "there")
    finally:
        logging.getLogger("supportwidget").removeHandler(capture)
    entry = json.loads(handler_output[-1])
    assert entry["message"] == "hello there"
    assert entry["request_id"] == "req-00000001"
    assert entry["level"] == "WARNING"


def test_secrets_never_reach_the_logs(
    database_url, tmp_path, smtp_tls_server, vonage_standin, caplog
):
    # The secrets are in use, not just configured: mail logs in over STARTTLS with the
    # password, the emergency pages go through the real Vonage SDK with the API secret.
    app = make_app(
        database_url,
        tmp_path,
        **smtp_tls_server.config(),
        VONAGE_API_KEY=API_KEY,
        VONAGE_API_SECRET=API_SECRET,
        VONAGE_REST_HOST=vonage_standin.host,
    )
    caplog.set_level(logging.DEBUG)
    with running(app):
        site = seed_site()
        client = app.test_client()
        path = f"/s/{site.site_key}/emergency"
        token = form_token(client, path)
        data = standard_fields(category="offline", offline_answer="yes", billing_consent="y")
        assert client.post(path, data={**data, "form_token": token}).status_code == 200
        client.post(path, data={**data, "form_token": "forged"})
        assert vonage_standin.requests and smtp_tls_server.wait_for(3)
        secrets = (smtp_tls_server.password, API_SECRET, app.config["SECRET_KEY"], token)
        for secret in (*secrets, site.secret):
            assert secret not in caplog.text
