"""The honest reference for issue 17 target 1: the hosted-form POST's work, written by hand.

    gunicorn -w 2 'reference_handler:reference_app()'   # from bench/, the service's environment

A plain Flask app (no WTForms, no Flask-Babel per request, no ORM, no limiter, no hooks)
doing what POST /s/<site_key> does for a standard request on the embedded defaults:
* the same validation: the signed form token (site, age), subject 3–150 chars on one line,
  description 10–20,000, name ≤ 120 on one line, a deliverable-looking e-mail ≤ 254,
  page_meta a JSON object; a refused request answers 400/422;
* the same rows in one transaction with SQLAlchemy Core: the ticket (due time from the
  agency's calendar, form nonce UNIQUE), its "created" event, one outbox row per active staff
  member (one rendering for all) and the requester's confirmation, then the rows handed to
  the worker's e-mail lane in one job, as the service does;
* the same templates (the service's own files, filters and catalog) for the six e-mail
  parts and the answer page, with the same queue position counted once.

Only what this bench's requests need (English, no screenshots, no SLA plan, no signed
identity): it is a yardstick, not a second implementation. The service's app object is
built once at start-up only to read its configuration, templates and tables.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from babel.support import NullTranslations
from email_validator import EmailNotValidError, validate_email
from flask import Flask, Response, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

from supportwidget import create_app
from supportwidget.intake.forms import form_strings
from supportwidget.models import (
    Notification,
    OpenTicketCount,
    Site,
    Ticket,
    TicketEvent,
    db,
    utcnow,
)
from supportwidget.notify.channels import CHANNELS
from supportwidget.notify.messages import one_line_subject
from supportwidget.platform import jobs
from supportwidget.sla.schedules import FCFS_EXPECTATION, calendar_for, default_target
from supportwidget.vocab import MAX_SCREENSHOTS

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self'; script-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'self' {origins}",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
LINE_BREAK = re.compile(r"[\r\n\u2028\u2029]")
T, E, N, S = (cast(sa.Table, m.__table__) for m in (Ticket, TicketEvent, Notification, Site))


def one_line(value: str, low: int, high: int) -> bool:
    """Tell whether a required text is within its length and on one line."""
    return low <= len(value.strip()) <= high and not LINE_BREAK.search(value)


def reference_app() -> Flask:
    """Return the reference app (a gunicorn factory): start-up reads the service's setup once."""
    service = create_app()
    with service.app_context():
        engine = db.engine
        calendar, target = calendar_for(None), default_target()
        config = dict(service.config)
        email = CHANNELS["email"]
        deliver = service.extensions[jobs.EXTENSION].tasks[(email.lane, "deliver")]
        expectation_base = str(FCFS_EXPECTATION)
    with service.test_request_context():
        strings = form_strings()  # the service caches them per language too
    app = Flask("reference", static_folder=service.static_folder)
    app.config.update(LOG_FORMAT=config["LOG_FORMAT"], LOG_LEVEL=config["LOG_LEVEL"])
    app.jinja_env.loader = service.jinja_env.loader
    app.jinja_env.filters.update(service.jinja_env.filters)
    app.jinja_env.globals.update(service.jinja_env.globals)
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_translations(NullTranslations(), newstyle=True)  # type: ignore[attr-defined]
    form_tokens = URLSafeTimedSerializer(config["SECRET_KEY"], salt="form")
    status_tokens = URLSafeSerializer(config["SECRET_KEY"], salt="status")
    public = config["PUBLIC_URL"].rstrip("/")

    def refuse(status: int) -> Response:
        return Response("refused", status=status)

    @app.post("/s/<site_key>")
    def standard_form(site_key: str) -> Response:
        """Validate, write the ticket and its outbox rows, render the answer."""
        form = request.form
        try:
            data = form_tokens.loads(
                form.get("form_token", ""), max_age=config["FORM_TOKEN_MAX_AGE"]
            )
        except BadSignature:
            return refuse(400)
        if data.get("site") != site_key:
            return refuse(400)
        subject, description = form.get("subject", ""), form.get("description", "")
        name, address = form.get("name", ""), form.get("email", "")
        meta = json.loads(form["page_meta"]) if form.get("page_meta") else {}
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            return refuse(422)
        if not (
            one_line(subject, 3, 150)
            and 10 <= len(description.strip()) <= 20_000
            and one_line(name, 1, 120)
            and len(address) <= 254
            and isinstance(meta, dict)
        ):
            return refuse(422)
        with engine.begin() as conn:
            site = conn.execute(
                sa.select(
                    S.c.id, S.c.name, S.c.url, S.c.site_key, S.c.client_id, S.c.allowed_origins
                ).where(S.c.site_key == site_key)
            ).one_or_none()
            if site is None:
                return refuse(404)
            html, ids = file_ticket(
                conn, site, subject, description, name, address, meta, data["nonce"]
            )
        deliver(ids)  # after the commit, one batch: a ticket's mail goes together
        response = Response(html)
        origins = " ".join(site.allowed_origins or [])
        response.headers.update({k: v.format(origins=origins) for k, v in HEADERS.items()})
        return response

    def file_ticket(
        conn: Any,
        site: Any,
        subject: str,
        description: str,
        name: str,
        address: str,
        meta: dict[str, Any],
        nonce: str,
    ) -> tuple[str, list[int]]:
        """Insert the rows, render the mail and the page (inside the one transaction)."""
        now = utcnow()
        due = calendar.add(now, target)
        values = dict(
            site_id=site.id,
            kind="standard",
            subject=subject.strip(),
            description=description.strip(),
            requester_name=name.strip(),
            requester_email=address.strip(),
            page_meta=meta,
            identity_verified=False,
            locale="en",
            billing_consent=False,
            form_nonce=nonce,
            status="new",
            created_at=now,
            effective_due_at=due,
            needed_by_conflict=False,
            queue_rank=2,
            breach_warned=[],
            breached=[],
            page_round=0,
        )
        ticket_id = conn.execute(sa.insert(T).values(**values)).inserted_primary_key[0]
        conn.execute(
            sa.insert(E).values(
                ticket_id=ticket_id, kind="created", created_at=now, detail={"kind": "standard"}
            )
        )
        position = queue_position(conn, ticket_id, due)
        expectation = expectation_base + (
            f" Right now you are number {position} in the queue." if position else ""
        )
        client_name = conn.execute(
            sa.text("SELECT name FROM client WHERE id = :id"), {"id": site.client_id}
        ).scalar_one()
        ticket = SimpleNamespace(
            **values,
            id=ticket_id,
            reference=f"SUP-{ticket_id}",
            is_emergency=False,
            category=None,
            callback_phone=None,
            needed_by=None,
            urgency_note=None,
            first_response_due=None,
            resolution_due=None,
            sla_plan_name=None,
            attachments=[],
            requester_vouched_for=False,
        )
        status_url = "/t/" + status_tokens.dumps(ticket_id)
        context = dict(
            ticket=ticket,
            site=site,
            client=SimpleNamespace(name=client_name),
            status_url=public + status_url,
            ticket_url=f"{public}/dashboard/tickets/SUP-{ticket_id}",
            emergency_url=f"{public}/s/{site.site_key}/emergency",
            agency=config["AGENCY_NAME"],
            mail_domain=public.split("//", 1)[-1].split("/")[0].split(":")[0],
            vouched=False,
            emergency=None,
            zone=config["DEFAULT_TIMEZONE"],
            html_lang="en",
            text_dir="ltr",
        )
        staff = conn.execute(sa.text("SELECT id, email FROM staff WHERE active ORDER BY id")).all()
        rows = [
            outbox_row(
                ticket_id,
                "staff_new_ticket",
                context,
                member.email,
                "staff-new",
                now,
                staff_id=member.id,
                reply_to=address.strip(),
                with_attachments=True,
            )
            for member in staff
        ]
        for row in rows[1:]:  # rendered once for all staff, as the service does
            row.update(
                subject=rows[0]["subject"],
                body_text=rows[0]["body_text"],
                body_html=rows[0]["body_html"],
            )
        rows.append(
            outbox_row(
                ticket_id,
                "requester_confirmation",
                {**context, "expectation": expectation},
                address.strip(),
                "confirm",
                now,
            )
        )
        ids = list(conn.execute(sa.insert(N).returning(N.c.id), rows).scalars())
        html = render_template(
            "hosted/answer.html",
            site=site,
            client=context["client"],
            embedded=False,
            widget_config=json.dumps(
                {
                    "allowedOrigins": site.allowed_origins,
                    "maxBytes": config["MAX_SCREENSHOT_BYTES"],
                    "maxFiles": MAX_SCREENSHOTS,
                    "embedded": False,
                    "strings": strings,
                }
            ).replace("<", "\\u003c"),
            ticket=ticket,
            expectation=expectation,
            emergency=None,
            status_url=status_url,
        )
        return html, ids

    def outbox_row(
        ticket_id: int,
        template: str,
        context: dict[str, Any],
        recipient: str,
        purpose: str,
        now: datetime,
        **extra: Any,
    ) -> dict[str, Any]:
        """Render one e-mail's three parts into an outbox row's values."""
        subject = render_template(f"email/{template}.subject.txt", recipient=recipient, **context)
        return dict(
            ticket_id=ticket_id,
            channel="email",
            recipient=recipient,
            purpose=purpose,
            subject=one_line_subject(subject),
            body_text=render_template(f"email/{template}.txt", recipient=recipient, **context),
            body_html=render_template(f"email/{template}.html", recipient=recipient, **context),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            queued_at=now,
            staff_id=extra.pop("staff_id", None),
            reply_to=extra.pop("reply_to", None),
            with_attachments=extra.pop("with_attachments", False),
        )

    def queue_position(conn: Any, ticket_id: int, due: datetime) -> int:
        """Count the open tickets ahead, from the back, as the service's workqueue does."""
        behind = sa.select(sa.func.count()).where(
            T.c.queue_rank < 9,
            T.c.id != ticket_id,
            sa.tuple_(T.c.queue_rank, T.c.effective_due_at, T.c.id) > (2, due, ticket_id),
        )
        undated = sa.select(sa.func.count()).where(
            T.c.queue_rank == 2, T.c.effective_due_at.is_(None), T.c.id != ticket_id
        )
        total = sa.select(
            sa.func.coalesce(sa.func.sum(OpenTicketCount.__table__.c.open_tickets), 0)
        )
        ahead = sa.select(
            total.scalar_subquery() - behind.scalar_subquery() - undated.scalar_subquery() - 1
        )
        return int(conn.execute(ahead).scalar() or 0) + 1

    @app.get("/healthz")
    def healthz() -> str:
        """Answer 200 once the server is up."""
        return "ok"

    return app
