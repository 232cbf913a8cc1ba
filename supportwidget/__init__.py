"""supportwidget: the support desk web agencies want."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from jinja2 import ChoiceLoader, FileSystemLoader

from supportwidget import commands, config, health, models, vocab, worker
from supportwidget.demo import seed
from supportwidget.emergencies import webhooks
from supportwidget.intake import views
from supportwidget.notify.channels import email, sms, voice
from supportwidget.platform import database, errors, i18n, limits, logs, security
from supportwidget.sites import api as heartbeat_api
from supportwidget.staff import admin, api, auth, billing, dashboard, sites

# Each domain package keeps its own templates; template names are unique across them.
TEMPLATE_PACKAGES = ("platform", "intake", "tickets", "emergencies", "sla", "notify", "staff")
BLUEPRINTS = (
    views.bp,
    health.bp,
    seed.bp,
    webhooks.bp,
    api.bp,
    auth.bp,
    dashboard.bp,
    billing.bp,
    admin.bp,
    sites.bp,
    heartbeat_api.bp,
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the supportwidget application."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "SUPPORTWIDGET_INSTANCE_PATH"
    )
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=instance_path,
        # static/ (Flask's default) holds the requester's assets; staff ones are the dashboard's.
        template_folder=None,
    )
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(Path(app.root_path) / name / "templates") for name in TEMPLATE_PACKAGES]
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.defaults())
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("SUPPORTWIDGET")
    else:
        app.config.from_mapping(test_config)
    config.finish(app.config, app.instance_path)
    os.makedirs(app.config["UPLOAD_FOLDER"], exist_ok=True)

    _bind(app)
    return app


def _bind(app: Flask) -> None:
    """Bind every extension, then register every blueprint and command."""
    # <id:…> in a URL: a row id, so a number too big for a BIGINT is a 404, not a 500.
    app.url_map.converters["id"] = models.IdConverter
    database.init_app(app)
    email.mail.init_app(app)
    sms.sms.init_app(app)
    voice.voice.init_app(app)
    worker.init_app(app)
    limits.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    logs.init_app(app)
    auth.init_app(app)
    # Templates list and label the closed sets from vocab.py, never spelling a value out.
    app.jinja_env.globals.update(
        {closed_set.__name__: closed_set for closed_set in vocab.CLOSED_SETS},
        STATUS_FILTERS=vocab.STATUS_FILTERS,
        MAX_SCREENSHOTS=vocab.MAX_SCREENSHOTS,
    )
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    commands.init_app(app)
