"""Emergencies: paging the on-call team, acknowledgement (SMS, link, dashboard), re-paging,
escalation, and the Vonage webhooks that feed them."""
