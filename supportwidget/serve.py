"""`serve`: the production WSGI server and the notification worker in one process."""

from __future__ import annotations

import click
from flask import current_app
from waitress import serve

from supportwidget.platform import logs
from supportwidget.platform.database import init_schema
from supportwidget.worker import Workers


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Run the web server only (workers run elsewhere).")
def serve_command(host: str, port: int, threads: int, no_worker: bool) -> None:
    """Run the web server (waitress) and, unless --no-worker, the worker."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    init_schema()
    logs.configure(app)  # after the migrations, whose logging setup would replace ours
    workers = None if no_worker else Workers(app)
    if workers:
        workers.start()
    click.echo(
        f"supportwidget listening on http://{host}:{port}/ "
        f"({'with' if workers else 'without'} worker)"
    )
    try:
        serve(
            app,
            host=host,
            port=port,
            threads=threads,
            channel_timeout=30,
            clear_untrusted_proxy_headers=True,
        )
    finally:
        if workers:
            workers.stop()
