"""CPU per step of a submission, in one process, beside the floor's whole request (issues 2, 7).

    python bench/components.py [--requests 300]

The throughput benches measure rates under load; this one says what each step of a
submission costs on its own, with no HTTP server, no threads and no other process: CPU
time (time.process_time) of this single-threaded process, per request, through Flask's
test client on the embedded defaults (SQLite WAL), after a warm-up:

* floor: the bare app of bench/_floor.py, one-row INSERT (what the 0.6 target divides by);
* GET /s/<key>: render the hosted form (one SELECT, one template, a signed token);
* POST /s/<key>: file a ticket (token checked, six rows, e-mails rendered, answer page);
* one outbox e-mail turned into bytes (email_message + as_bytes), no SMTP, and the same
  e-mail as Flask-Mail's own Message builds it (before LeanMessage), in the same run.

A submission is sustainable only once its three e-mails are sent, so the ratio to the floor
cannot exceed floor / (POST + 3 e-mails), whatever the server, threads or processes.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from _floor import bare_app
from _support import STANDARD, TOKEN_RE, run_in_tempdir, seed, service_env

TARGET = 0.6


def per_call(fn: Any, n: int) -> float:
    """Return the CPU seconds of one call of fn, averaged over n calls after 20 warm-ups."""
    for _ in range(20):
        fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def measure(args: argparse.Namespace, tmp: Path) -> None:
    """Time each step and print the costs and the bound they put on the ratio."""
    n = args.requests
    floor_client = bare_app(f"sqlite:///{tmp / 'bare.sqlite'}").test_client()
    floor = per_call(lambda: floor_client.post("/insert", data=STANDARD), n)

    env = service_env(
        tmp / "instance", STAFF_NOTIFY_EMAILS="[]", MAIL_SUPPRESS_SEND="true", QUEUE_URL="memory://"
    )
    site_key = seed(env, staff=2)
    os.environ.update(env)
    import sqlalchemy as sa
    from flask_mail import Message as FlaskMailMessage

    from supportwidget import create_app
    from supportwidget.models import Notification, db
    from supportwidget.notify import messages
    from supportwidget.notify.channels.email import Message

    app = create_app()
    client = app.test_client()
    path = f"/s/{site_key}"

    def token() -> str:
        match = TOKEN_RE.search(client.get(path).data)
        assert match, "the form page carries no token"
        return match.group(1).decode()

    get = per_call(token, n)
    tokens = [token() for _ in range(n + 20)]

    def post() -> None:
        page = client.post(path, data={**STANDARD, "form_token": tokens.pop()}).data
        assert b"SUP-" in page, page[:300]

    submit = per_call(post, n)
    with app.app_context():
        rows = db.session.scalars(sa.select(Notification).order_by(Notification.id)).all()
        mails = sum(1 for row in rows if row.ticket_id == rows[0].ticket_id)
        for row in rows:  # load tickets and attachments once, so no e-mail below pays a query
            if row.ticket is not None:
                list(row.ticket.attachments)
        cycle = iter(rows)

        def serialise() -> None:
            message: Message = messages.email_message(next(cycle))
            message.as_bytes()

        email = per_call(serialise, min(n, len(rows) - 20))
        cycle = iter(rows)

        def flask_mail_only() -> None:
            # What email_message built before LeanMessage: Flask-Mail's own, nested multiparts.
            row = next(cycle)
            root = messages.root_message_id(row.ticket_id)
            message = FlaskMailMessage(
                subject=row.subject or "",
                recipients=[row.recipient],
                body=row.body_text,
                html=row.body_html,
                reply_to=row.reply_to,
                extra_headers={"References": root, "In-Reply-To": root},
            )
            message.msgId = messages.message_id(row)
            message.as_bytes()

        flask_email = per_call(flask_mail_only, min(n, len(rows) - 20))
    bound = floor / (submit + mails * email)
    print(f"\nCPU per call, one process, no HTTP server ({n} calls each, SQLite WAL)")
    for label, cost in (
        ("floor: bare Flask one-row INSERT", floor),
        ("GET  /s/<key>: render the form", get),
        ("POST /s/<key>: file a ticket", submit),
        ("one e-mail to bytes (LeanMessage)", email),
        ("one e-mail to bytes (Flask-Mail's)", flask_email),
    ):
        print(f"  {label:<36} {cost * 1000:7.2f} ms = {cost / floor:5.1f} x floor")
    print(
        f"bound on submissions / floor: {floor:.4f} / ({submit:.4f} + {mails} x {email:.4f}) "
        f"= {bound:.2f} (target {TARGET}); without any e-mail: {floor / submit:.2f}; "
        f"rendering the form page alone: {floor / get:.2f}"
    )


def main() -> None:
    """Parse arguments and run in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the folder")
    args = parser.parse_args()
    run_in_tempdir("sw-bench-components-", args, measure)


if __name__ == "__main__":
    main()
