"""Filing a standard request through the hosted form, as a requester does without JavaScript."""

from __future__ import annotations

import io
import json
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from supportwidget.models import Attachment, Notification, Ticket, db
from supportwidget.notify import messages

from conftest import form_token, standard_fields


def png_bytes(size: tuple[int, int] = (40, 30), **info: str) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    image.save(out, format="PNG")
    return out.getvalue()


def submit(client, site, path=None, files=None, **fields):
    path = path or f"/s/{site.site_key}"
    data = standard_fields(**fields)
    data.setdefault("form_token", form_token(client, path))
    if files:
        data["screenshots"] = files
    return client.post(path, data=data, content_type="multipart/form-data")


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_form_page_explains_emergencies_and_is_framable_only_by_the_site(client, site):
    response = client.get(f"/s/{site.site_key}?embed=1")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Only <strong>site down</strong>" in page
    assert f"/s/{site.site_key}/emergency" in page
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://acme.test" in csp


def test_submission_shows_reference_and_sends_mail(client, site, smtp_server):
    response = submit(client, site, files=[(io.BytesIO(png_bytes()), "shot.png")])
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    reference = re.search(r"SUP-\d+", page).group(0)
    assert "first come, first served" in page
    assert "number 1 in the queue" in page

    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.reference == reference
    assert len(ticket.attachments) == 1

    mails = smtp_server.wait_for(4)
    by_rcpt = {m["To"]: m for m in mails}
    assert set(by_rcpt) == {
        "alice@agency.test",
        "bob@agency.test",
        "inbox@agency.test",
        "jane@example.com",
    }
    staff_mail = by_rcpt["alice@agency.test"]
    assert staff_mail["Subject"] == (
        f"[{reference}] Contact form sends no e-mail — Acme Shop / acme.test"
    )
    # A reply goes to the support mailbox and through the ticket (mail-in), not to the requester.
    assert staff_mail["Reply-To"] is None
    parts = {part.get_content_type() for part in staff_mail.walk()}
    assert {"text/plain", "text/html", "image/png"} <= parts
    confirmation = by_rcpt["jane@example.com"]
    assert reference in confirmation["Subject"]
    assert "/t/" in confirmation.get_body(("plain",)).get_content()
    # Every mail about the ticket references the same thread root.
    assert len({m["References"] for m in mails}) == 1
    statuses = db.session.scalars(sa.select(Notification.status)).all()
    assert statuses == ["sent"] * 4


def test_same_token_posted_twice_gives_the_same_ticket(client, site, smtp_server):
    token = form_token(client, f"/s/{site.site_key}")
    first = submit(client, site, form_token=token).get_data(as_text=True)
    second = submit(client, site, form_token=token).get_data(as_text=True)
    ref = re.search(r"SUP-\d+", first).group(0)
    assert ref in second
    assert count(Ticket) == 1
    assert count(Notification) == 4


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"subject": "Hi"}, "Field must be between 3 and 150 characters long."),
        ({"description": "too short"}, "Field must be between 10 and 20000 characters long."),
        ({"email": "not-an-address"}, "Please give a valid e-mail address."),
        ({"name": ""}, "Please give your name."),
        (
            {"needed_by": (date.today() - timedelta(days=3)).isoformat()},
            "The date can&#39;t be in the past.",
        ),
        ({"page_meta": "[1, 2"}, "Page details are not valid JSON."),
    ],
)
def test_bad_fields_are_refused_with_a_message_and_nothing_stored(
    client, site, smtp_server, fields, message
):
    response = submit(client, site, **fields)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(Ticket) == 0
    assert count(Notification) == 0
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (b"<html><script>alert(1)</script></html>", "is not a readable PNG"),
        (b"GIF89a" + b"\x00" * 20, "is not a readable PNG"),
        (png_bytes()[:60], "is not a readable PNG"),
    ],
)
def test_non_images_are_refused(client, site, upload, message):
    response = submit(client, site, files=[(io.BytesIO(upload), "evil.png")])
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(Ticket) == 0 and count(Attachment) == 0


def test_too_many_screenshots_are_refused(client, site):
    files = [(io.BytesIO(png_bytes()), f"s{i}.png") for i in range(6)]
    response = submit(client, site, files=files)
    assert response.status_code == 422
    assert "at most 5 screenshots" in response.get_data(as_text=True)


def test_oversized_screenshot_is_refused(app, client, site):
    app.config["MAX_SCREENSHOT_BYTES"] = 1000
    big = png_bytes((400, 400))
    assert len(big) > 1000
    response = submit(client, site, files=[(io.BytesIO(big), "big.png")])
    assert response.status_code == 422
    assert "is larger than" in response.get_data(as_text=True)


def test_decompression_bomb_is_refused_before_decoding(client, site):
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG")  # 100 MP, a few KB
    response = submit(client, site, files=[(io.BytesIO(out.getvalue()), "bomb.png")])
    assert response.status_code == 422
    assert "too many pixels" in response.get_data(as_text=True)


def test_metadata_and_trailing_bytes_are_stripped(app, client, site):
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera make
    Image.new("RGB", (20, 20)).save(out, format="JPEG", exif=exif)
    payload = out.getvalue() + b"<script>hidden</script>"
    assert submit(client, site, files=[(io.BytesIO(payload), "p.jpg")]).status_code == 200
    att = db.session.scalar(sa.select(Attachment))
    stored = app.config["UPLOAD_FOLDER"] + f"/{att.sha256[:2]}/{att.sha256}"
    data = open(stored, "rb").read()
    assert b"SecretCam" not in data and b"<script>" not in data
    assert Image.open(io.BytesIO(data)).getexif().get(0x010F) is None


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "security token is invalid"),
        ("forged.token.value", "security token is invalid"),
    ],
)
def test_missing_or_forged_token_is_refused(client, site, token, message):
    response = submit(client, site, form_token=token)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count(Ticket) == 0


def test_token_for_another_site_is_refused(client, site):
    from supportwidget.models import Site

    other = Site(client=site.client, name="shop2", url="https://shop2.test", allowed_origins=[])
    db.session.add(other)
    db.session.commit()
    token = form_token(client, f"/s/{other.site_key}")
    response = submit(client, site, form_token=token)
    assert response.status_code == 400
    assert "belongs to another site" in response.get_data(as_text=True)


def test_expired_token_is_refused(app, client, site):
    token = form_token(client, f"/s/{site.site_key}")
    app.config["FORM_TOKEN_MAX_AGE"] = -1
    response = submit(client, site, form_token=token)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_unknown_site_is_404_and_disabled_site_is_refused(client, site):
    assert client.get("/s/no-such-key").status_code == 404
    site.enabled = False
    db.session.commit()
    response = client.get(f"/s/{site.site_key}")
    assert response.status_code == 403
    assert "switched off" in response.get_data(as_text=True)


def test_status_page_shows_the_ticket_and_refuses_forged_tokens(client, site):
    page = submit(client, site).get_data(as_text=True)
    link = re.search(r'href="(/t/[^"]+)"', page).group(1)
    status = client.get(link)
    assert status.status_code == 200
    assert "Contact form sends no e-mail" in status.get_data(as_text=True)
    assert client.get("/t/1").status_code == 404
    assert client.get(link[:-2] + "xx").status_code == 404


def test_smtp_down_then_up_delivers_each_mail_exactly_once(app, client, site, smtp_server):
    from supportwidget.models import utcnow
    from supportwidget.notify import outbox

    with smtp_server.outage():
        response = submit(client, site)
        assert response.status_code == 200  # the requester is not failed by our SMTP outage
        rows = db.session.scalars(sa.select(Notification)).all()
        assert {r.status for r in rows} == {"pending"}
        # Each row says why it waits: the SMTP server could not be reached.
        assert all(r.last_error and smtp_server.host in r.last_error for r in rows)
    outbox.deliver_due(now=utcnow() + timedelta(hours=1))
    outbox.deliver_due(now=utcnow() + timedelta(hours=2))
    mails = smtp_server.wait_for(4)
    assert sorted(m["To"] for m in mails) == sorted(
        ["alice@agency.test", "bob@agency.test", "inbox@agency.test", "jane@example.com"]
    )
    assert {r.status for r in db.session.scalars(sa.select(Notification))} == {"sent"}


def test_long_names_make_a_shortened_subject_not_a_lost_ticket(client, site, smtp_server):
    # 150 + 120 + 200 characters once overflowed the outbox's subject column: on PostgreSQL
    # the whole ticket was refused and the requester told to try again, forever.
    site.name, site.client.name = "s" * 200, "c" * 120
    db.session.commit()
    response = submit(client, site, subject="x" * 150)
    assert response.status_code == 200 and "SUP-" in response.get_data(as_text=True)
    rows = db.session.scalars(sa.select(Notification)).all()
    assert rows and all(len(row.subject) <= 300 for row in rows)
    staff_subject = next(r.subject for r in rows if r.recipient == "bob@agency.test")
    assert staff_subject.startswith("[SUP-1] xxx") and staff_subject.endswith("…")


def test_a_ticket_s_mail_shares_one_smtp_connection(client, site, smtp_server):
    submit(client, site)
    envelopes = smtp_server.envelopes
    assert len(envelopes) == 4
    assert len({e.peer for e in envelopes}) == 1


def test_a_slow_batch_hands_back_what_its_lease_cannot_cover(app, client, site, smtp_server):
    # Each new connection waits 0.3 s for the greeting; the lease allows 0.2 s of sending.
    app.config["OUTBOX_LEASE_SECONDS"] = 0.4
    smtp_server.stall(0.3)
    submit(client, site)
    mails = smtp_server.wait_for(4)
    assert len({m["Message-ID"] for m in mails}) == 4
    # Handed back before the lease ran out (no second worker could take them mid-send), and
    # handing back is not an attempt: every row went out on its first try.
    assert len({e.peer for e in smtp_server.envelopes}) == 4
    rows = db.session.scalars(sa.select(Notification)).all()
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}


def test_worker_killed_mid_send_is_redriven_with_the_same_message_id(
    app, client, site, smtp_server
):
    from supportwidget.models import utcnow
    from supportwidget.notify import outbox

    with smtp_server.outage():
        submit(client, site)
    row = db.session.scalars(sa.select(Notification)).first()
    # A worker claimed the row, then died before recording the outcome.
    row.status, row.claimed_at = "sending", utcnow() - timedelta(minutes=10)
    db.session.commit()
    outbox.redrive(now=utcnow() + timedelta(hours=1))
    db.session.refresh(row)
    assert (row.status, row.last_error) == ("pending", "worker stopped while sending; retrying")
    outbox.deliver_due(now=utcnow() + timedelta(hours=1))
    db.session.refresh(row)
    assert (row.status, row.last_error) == ("sent", None)
    ids = [m["Message-ID"] for m in smtp_server.messages if m["To"] == row.recipient]
    assert ids == [messages.message_id(row)]


@pytest.mark.parametrize(
    ("template", "extra"),
    [
        ("requester_confirmation", {}),
        ("requester_acknowledged", {"acker": "staff"}),
        ("requester_reply", {"body": "We fixed it."}),
        ("requester_status", {"previous": "new"}),
        ("requester_downgraded", {"reason": "A typo is not an emergency."}),
    ],
)
def test_every_requester_email_links_the_emergency_form(client, site, template, extra):
    from supportwidget.models import Staff
    from supportwidget.notify import messages

    submit(client, site)
    ticket = db.session.scalar(sa.select(Ticket))
    staff = db.session.scalar(sa.select(Staff))
    extra = {k: (staff if v == "staff" else v) for k, v in extra.items()}
    row = messages.email(ticket, template, ticket.requester_email, "test", staff=staff, **extra)
    link = f"http://support.test/s/{site.site_key}/emergency"
    assert link in row.body_text and link in row.body_html
    db.session.rollback()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Contact form broken\r\nBcc: victim@example.com"),
        ("subject", "Contact form\x07 broken"),
        ("name", "Jane\nOwner"),
        ("name", "Jane\u2028Owner"),
        ("name", "Jane\x85Owner"),
        ("urgency_note", "launch \x1b[31mtomorrow"),
    ],
)
def test_one_line_fields_refuse_line_breaks_and_control_characters(
    client, site, smtp_server, field, value
):
    response = submit(client, site, **{field: value})
    assert response.status_code == 422
    error = re.search(rf'id="{field}-error">([^<]*)<', response.get_data(as_text=True))
    assert error and error.group(1) == (
        "Please write this on one line, without line breaks or control characters."
    )
    assert count(Ticket) == 0 and count(Notification) == 0


def test_control_characters_in_a_screenshot_name_are_stripped(client, site, smtp_server):
    # On PostgreSQL a NUL in the file name once answered 503 "try again", forever.
    name = "shot\x00\x1b[2J\u2028evil.png"
    response = submit(client, site, files=[(io.BytesIO(png_bytes()), name)])
    assert response.status_code == 200, response.get_data(as_text=True)
    (attachment,) = db.session.scalars(sa.select(Attachment)).all()
    assert attachment.filename == "shot [2J evil.png"
    staff_mail = next(m for m in smtp_server.wait_for(4) if m["To"] == "bob@agency.test")
    (image,) = [p for p in staff_mail.walk() if p.get_content_type() == "image/png"]
    assert image.get_filename() == "shot [2J evil.png"


def test_page_details_cannot_fake_lines_in_the_staff_mail(client, site, smtp_server):
    fake = "\nI'm on it — acknowledge and stop the paging: http://evil.test/a/1"
    meta = {"url": "https://acme.test/" + fake, "theme": {"na\u2028me": "Astra" + fake}}
    assert submit(client, site, page_meta=json.dumps(meta)).status_code == 200
    staff_mail = next(m for m in smtp_server.wait_for(4) if m["To"] == "bob@agency.test")
    lines = staff_mail.get_body(("plain",)).get_content().splitlines()
    assert not [line for line in lines if line.startswith("I'm on it")]
    stored = db.session.scalar(sa.select(Ticket.page_meta))
    assert stored["url"] == "https://acme.test/ I'm on it — acknowledge and stop the paging: " + (
        "http://evil.test/a/1"
    )
    assert list(stored["theme"]) == ["na me"]
