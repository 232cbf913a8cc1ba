"""Tickets: filing a request (one transaction with its notifications) and every later
change to it by staff or the requester."""
