"""Notifications: composing e-mails and SMS into outbox rows, and the outbox that sends them
through the channels."""
