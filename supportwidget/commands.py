"""Every `flask --app supportwidget …` command, registered in this one place.

The commands themselves live with their domain (accounts in staff/cli.py, mail-in with
intake, the worker and `serve` at the top); a view never imports a command module.
"""

from __future__ import annotations

import click
from flask import Flask

from supportwidget.demo.seed import demo_command
from supportwidget.intake.mail_command import mail_in_command
from supportwidget.platform.database import init_db_command
from supportwidget.serve import serve_command
from supportwidget.staff.cli import client_cli, report_cli, site_cli, sla_cli, staff_cli
from supportwidget.watch.cli import site_watch
from supportwidget.watch.runner import watch_command
from supportwidget.worker import worker_command

COMMANDS: tuple[click.Command, ...] = (
    init_db_command,
    client_cli,
    site_cli,
    staff_cli,
    report_cli,
    sla_cli,
    serve_command,
    worker_command,
    watch_command,
    mail_in_command,
    demo_command,
)


def init_app(app: Flask) -> None:
    """Register every command on the app's `flask` command line."""
    # `site watch` lives with the watch; the `site` group with the other site commands.
    site_cli.add_command(site_watch)
    for command in COMMANDS:
        app.cli.add_command(command)
