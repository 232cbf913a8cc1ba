"""Notification channels, by name. To add one: a module with a class that follows
`base.Channel`, its value in vocab.NotificationChannel, and one entry here; the outbox, the
worker and /healthz take it from there."""

from __future__ import annotations

from supportwidget.notify.channels.base import Channel
from supportwidget.notify.channels.email import EmailChannel
from supportwidget.notify.channels.sms import SmsChannel
from supportwidget.notify.channels.voice import VoiceChannel

CHANNELS: dict[str, Channel] = {
    channel.name: channel for channel in (EmailChannel(), SmsChannel(), VoiceChannel())
}
