"""The demo: seed data and an example client dashboard that embeds the widget."""
