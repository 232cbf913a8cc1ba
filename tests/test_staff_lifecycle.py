"""Staff coming and going: invitations with a one-time link, disable and enable."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from supportwidget.emergencies import paging as emergencies
from supportwidget.models import Staff, db
from supportwidget.notify import messages
from supportwidget.staff import lifecycle
from supportwidget.staff.auth import hash_token

from test_dashboard import csrf_from, login, new_emergency, new_request, staff  # noqa: F401

LINK = re.compile(r"(http://\S+/dashboard/invite/\S+)")


def member(email):
    return db.session.scalar(sa.select(Staff).where(Staff.email == email))


def invite_path(link):
    return link.split("support.test", 1)[1]


def test_invite_command_mails_a_one_time_link_that_signs_in(runner, client, site, smtp_server):
    result = runner.invoke(
        args=["staff", "invite", "--name", "Carol", "--email", "Carol@Agency.test", "--on-call"]
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert LINK.fullmatch(link)
    (mail,) = smtp_server.wait_for(1)
    assert mail["To"] == "carol@agency.test" and link in mail.get_body(("plain",)).get_content()
    carol = member("carol@agency.test")
    assert carol.password_hash is None and carol.on_call
    # Before a password is set, nobody signs in as Carol.
    assert login(client, "carol@agency.test", "").status_code == 401
    page = client.get(invite_path(link))
    assert page.status_code == 200 and "Welcome, Carol" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    short = client.post(invite_path(link), data={"csrf_token": token, "password": "short"})
    assert short.status_code == 422 and "at least 10" in short.get_data(as_text=True)
    done = client.post(
        invite_path(link), data={"csrf_token": token, "password": "a long new password"}
    )
    assert done.status_code == 303
    assert "Queue" in client.get("/dashboard/").get_data(as_text=True)
    # Used once: the same link no longer works.
    again = client.get(invite_path(link))
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    client.post(
        "/dashboard/logout",
        data={"csrf_token": csrf_from(client.get("/dashboard/").get_data(as_text=True))},
    )
    assert login(client, "carol@agency.test", "a long new password").status_code == 303


def test_an_invitation_expires_after_72_hours(app, client, site, monkeypatch):
    carol, link = lifecycle.invite("Carol", "carol@agency.test")
    monkeypatch.setattr(lifecycle, "INVITE_VALID", timedelta(seconds=-1))
    response = client.get(invite_path(link))
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)


def test_invite_refuses_an_address_already_on_the_team(runner, site):
    result = runner.invoke(
        args=["staff", "invite", "--name", "Bob 2", "--email", "bob@agency.test"]
    )
    assert result.exit_code != 0 and "already exists" in result.output


@pytest.mark.usefixtures("staff")
def test_admin_invites_and_disables_from_the_staff_page(client, site, smtp_server):
    login(client, "alice@agency.test")
    page = client.get("/dashboard/admin/staff").get_data(as_text=True)
    response = client.post(
        "/dashboard/admin/staff/invite",
        data={
            "csrf_token": csrf_from(page),
            "name": "Dan",
            "email": "dan@agency.test",
            "role": "agent",
        },
    )
    assert response.status_code == 303
    assert LINK.search(smtp_server.wait_for(1)[0].get_body(("plain",)).get_content())
    bob = member("bob@agency.test")
    page = client.get("/dashboard/admin/staff").get_data(as_text=True)
    assert "Disable Bob" in page and "invited" in page
    response = client.post(
        f"/dashboard/admin/staff/{bob.id}/active",
        data={"csrf_token": csrf_from(page), "active": "n"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert not member("bob@agency.test").active
    assert "Enable Bob" in client.get("/dashboard/admin/staff").get_data(as_text=True)
    alice = member("alice@agency.test")
    page = client.get("/dashboard/admin/staff").get_data(as_text=True)
    refused = client.post(
        f"/dashboard/admin/staff/{alice.id}/active",
        data={"csrf_token": csrf_from(page), "active": "n"},
    )
    assert refused.status_code == 422 and "cannot disable yourself" in refused.get_data(
        as_text=True
    )


@pytest.mark.usefixtures("staff")
def test_a_disabled_person_gets_nothing_and_is_signed_out_at_once(
    app, runner, client, site, smtp_server
):
    bob = member("bob@agency.test")
    token = "sw_bobs-token"
    bob.api_token_hash = hash_token(token)
    db.session.commit()
    assert login(client, "bob@agency.test").status_code == 303
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/tickets", headers=headers).status_code == 200
    # Something queued for Bob but not out yet when he leaves.
    queued = messages.email(
        new_request(site), "staff_new_ticket", bob.email, "staff-new", staff=bob
    )
    db.session.commit()

    result = runner.invoke(args=["staff", "disable", "BOB@agency.test"])
    assert result.exit_code == 0, result.output
    assert "1 queued notification(s) to them withdrawn" in result.output
    assert client.get("/dashboard/").status_code == 302  # his session stopped
    assert api.get("/api/v1/tickets", headers=headers).status_code == 401
    assert login(client, "bob@agency.test").status_code == 401
    db.session.refresh(queued)
    assert queued.status == "failed" and "Bob was disabled" in queued.last_error

    smtp_server.clear()
    ticket = new_emergency(site)
    db.session.refresh(ticket)
    to_bob = [n for n in ticket.notifications if n.staff_id == bob.id]
    assert to_bob == []  # no page, no e-mail, no call
    assert {m["To"] for m in smtp_server.wait_for(3)} == {
        "alice@agency.test",
        "inbox@agency.test",
        "jane@example.com",
    }
    # Enabled again: he signs in and is paged.
    assert runner.invoke(args=["staff", "enable", "bob@agency.test"]).exit_code == 0
    assert login(client, "bob@agency.test").status_code == 303
    rows = emergencies.page_team(ticket, on_call_only=True)
    assert any(row.staff_id == bob.id for row in rows)
    db.session.rollback()


@pytest.mark.parametrize("command", ["disable", "enable"])
def test_disable_and_enable_name_unknown_people(runner, site, command):
    result = runner.invoke(args=["staff", command, "nobody@agency.test"])
    assert result.exit_code != 0 and "No staff member" in result.output
