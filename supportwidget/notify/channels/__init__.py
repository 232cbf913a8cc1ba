"""Notification channels: e-mail (SMTP) and SMS (Vonage)."""
