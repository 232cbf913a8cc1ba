"""Watching client sites: signed heartbeats from the WordPress plugin (versions, plugins and
the core-file check), kept per site; a changed core file opens a ticket once."""
