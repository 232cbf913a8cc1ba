"""Staff side: sign-in, the dashboard, admin pages, billing reports, the JSON API and the
account commands."""
