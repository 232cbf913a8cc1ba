"""Where people look (issue 18): the site page's uptime, chart and incidents, the queue's red
dot on sites that are down, and GET /api/v1/sites, after real watch rounds on a stand-in."""

from __future__ import annotations

import re

import sqlalchemy as sa
from test_watch import app_config, standin, watch_round, watched  # noqa: F401 - fixtures

from supportwidget.models import Staff, db
from supportwidget.staff import openapi

from test_dashboard import PASSWORD, login


def sign_in(client) -> None:
    for member in db.session.scalars(sa.select(Staff)):
        member.set_password(PASSWORD)
    db.session.commit()
    login(client, "alice@agency.test", PASSWORD)


def visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]*>", " ", html).split())


def go_down(app, site, standin) -> None:  # noqa: F811 - a stand-in, not the fixture
    standin.set("fail")
    for _ in range(3):
        watch_round(app, site)


def test_the_site_page_shows_uptime_the_chart_and_the_incident(app, client, watched, standin):  # noqa: F811 - fixtures
    sign_in(client)
    empty = client.get(f"/dashboard/sites/{watched.id}").get_data(as_text=True)
    assert "Not checked yet" in empty and "no checks yet" in empty
    watch_round(app, watched)
    go_down(app, watched, standin)
    standin.set("ok")
    watch_round(app, watched)
    html = client.get(f"/dashboard/sites/{watched.id}").get_data(as_text=True)
    text = visible(html)
    # 5 checks, 3 failed: 40 % over every window.
    assert "24 h 40.00 % 7 d 40.00 % 30 d 40.00 %" in text
    assert f"Checking {watched.url} every 60 s" in text
    assert re.search(r'<polyline class="response-time"[^>]* points="[\d.]+,[\d.]+', html)
    assert html.count('class="failed"') == 1  # the three failures share one 10-minute bucket
    assert re.search(
        r"Incidents \d\d \w+ \d\d:\d\d UTC: offline \(503 Service Unavailable in [\d.]+ s\), "
        r"back up \d\d:\d\d UTC after \d+ min — SUP-1",
        text,
    )


def test_the_queue_marks_sites_that_are_down(app, client, watched, standin):  # noqa: F811 - fixtures
    sign_in(client)
    go_down(app, watched, standin)
    queue = client.get("/dashboard/").get_data(as_text=True)
    assert 'aria-label="Site down"' in queue
    standin.set("ok")
    watch_round(app, watched)
    assert 'aria-label="Site down"' not in client.get("/dashboard/").get_data(as_text=True)


def test_the_api_lists_sites_with_their_status(app, client, runner, watched, standin):  # noqa: F811 - fixtures
    token = runner.invoke(args=["staff", "token", "alice@agency.test"]).output.split()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/sites").status_code == 401
    [site] = client.get("/api/v1/sites", headers=headers).get_json()["sites"]
    assert site["status"] == "unknown" and site["uptime_24h"] is None
    assert site["last_checked_at"] is None and site["client"]["name"] == "Acme Shop"
    watch_round(app, watched)
    go_down(app, watched, standin)
    [site] = client.get("/api/v1/sites", headers=headers).get_json()["sites"]
    assert site["status"] == "down" and site["uptime_24h"] == 0.25
    assert site["last_checked_at"].endswith("+00:00") and site["url"] == watched.url
    runner.invoke(args=["site", "watch", "acme.test", "--off"])
    [site] = client.get("/api/v1/sites", headers=headers).get_json()["sites"]
    assert site["status"] == "off"
    spec = openapi.document()
    assert "/sites" in spec["paths"]
    status = spec["components"]["schemas"]["SiteStatus"]["properties"]["status"]
    assert "$ref" in status or "enum" in status
