"""Watching client sites: one check of a site's URL (probe.py), used when an offline
emergency is filed; an uptime watcher builds on the same check."""
