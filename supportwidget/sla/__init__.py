"""SLA: business time, due times from a client's plan, breach warnings, and the staff work
queue ordered by them."""
