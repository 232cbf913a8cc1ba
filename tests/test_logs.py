"""Logs: a request id on every answer and log line; JSON lines on request; no secrets."""

from __future__ import annotations

import json
import logging

from supportwidget import logs

from conftest import form_token, standard_fields


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


def test_secrets_never_reach_the_logs(app, client, site, caplog):
    app.config.update(MAIL_PASSWORD="smtp-pa55word", VONAGE_API_SECRET="vonage-s3cret")
    caplog.set_level(logging.DEBUG)
    token = form_token(client, f"/s/{site.site_key}")
    client.post(f"/s/{site.site_key}", data={**standard_fields(), "form_token": token})
    client.post(f"/s/{site.site_key}", data={**standard_fields(), "form_token": "forged"})
    text = caplog.text
    for secret in ("smtp-pa55word", "vonage-s3cret", app.config["SECRET_KEY"], token, site.secret):
        assert secret not in text
