"""Intake: how requests arrive. The widget loader, the hosted forms and their status page,
signed identity, and mail-in."""
