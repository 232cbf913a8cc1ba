"""The outbox and its channel registry: every row goes out through its own channel, or fails."""

from __future__ import annotations

from flask import Flask

from supportwidget.models import Notification, db
from supportwidget.notify import outbox
from supportwidget.notify.channels import CHANNELS
from supportwidget.notify.channels.sms import sms_sent


def test_a_row_for_an_unknown_channel_fails_visibly_and_is_never_sent_as_an_sms(app: Flask):
    row = Notification(channel="fax", recipient="+447700900123", purpose="test", body_text="Hi")
    db.session.add(row)
    db.session.commit()
    texts: list[str] = []

    def record(sender: Flask, **details: object) -> None:
        texts.append(str(details["text"]))

    with sms_sent.connected_to(record, sender=app):
        outbox.schedule([row])  # tests run jobs at once: this delivers
    db.session.refresh(row)
    assert row.status == "failed"
    assert row.last_error == "not sent: no channel 'fax'"
    assert texts == []


def test_every_channel_sends_on_a_lane_of_its_own():
    # An SMS page must never wait behind a slow SMTP server: no two channels share a lane.
    lanes = [channel.lane for channel in CHANNELS.values()]
    assert sorted(lanes) == sorted(set(lanes)) and len(lanes) >= 2
