"""One date and time style per language, times in the plan's zone with the zone named."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from supportwidget.models import SlaPlan, Ticket, db

from conftest import form_token, standard_fields


@pytest.fixture
def tokyo_site(site):
    """A client whose plan works in Tokyo time, nine hours ahead of UTC."""
    site.client.sla_plan = SlaPlan(
        name="Gold",
        timezone="Asia/Tokyo",
        hours="mon-sun 00:00-24:00",
        first_response_minutes=240,
        resolution_minutes=960,
    )
    db.session.commit()
    return site


def visible(response) -> str:
    return " ".join(re.sub(r"<[^>]*>", " ", response.get_data(as_text=True)).split())


@pytest.mark.parametrize(
    ("locale", "needed", "sent"),
    [
        ("en", "Fri 15 Jan 2027", r"Sent on \w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d Asia/Tokyo"),
        ("de", "Fr., 15. Jan. 2027", r"Gesendet am .+, \d\d:\d\d Asia/Tokyo"),
    ],
)
def test_pages_tell_dates_one_way_and_times_in_the_plan_s_zone(
    client, tokyo_site, locale, needed, sent
):
    path = f"/s/{tokyo_site.site_key}?locale={locale}"
    answer = client.post(
        path,
        data=standard_fields(needed_by="2027-01-15", form_token=form_token(client, path)),
    )
    assert answer.status_code == 200
    page = visible(answer)
    assert needed in page and "2027-01-15" not in page
    ticket = db.session.query(Ticket).one()
    status = visible(client.get(re.search(r'href="(/t/[^"]+)"', answer.get_data(as_text=True))[1]))
    assert re.search(sent, status), status
    assert "UTC" not in status
    tokyo = (ticket.created_at + timedelta(hours=9)).strftime("%H:%M")
    assert f"{tokyo} Asia/Tokyo" in status


def test_staff_mail_tells_due_times_in_the_plan_s_zone(client, tokyo_site, smtp_server):
    path = f"/s/{tokyo_site.site_key}"
    client.post(
        path,
        data=standard_fields(
            needed_by=str(date.today() + timedelta(days=30)), form_token=form_token(client, path)
        ),
    )
    ticket = db.session.query(Ticket).one()
    staff = [m for m in smtp_server.wait_for(2) if "inbox@agency.test" in m["To"]]
    text = staff[0].get_body(("plain",)).get_content()
    due = (ticket.first_response_due + timedelta(hours=9)).strftime("%H:%M")
    assert f"{due} Asia/Tokyo" in text and "UTC" not in text
