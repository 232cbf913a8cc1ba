"""gunicorn settings for supportwidget behind nginx.

    gunicorn 'supportwidget:create_app()' -c examples/deploy/gunicorn.conf.py

Every setting can be overridden on the command line (it wins over this file) or through the
GUNICORN_* environment variables read below, e.g. from /etc/supportwidget.env.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

# nginx on the same machine proxies to this address; nothing else should reach it.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# The usual 2 x CPUs + 1 processes; each also runs a few threads, because a request spends
# much of its time waiting on the database, and threads share one process's memory.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# nginx buffers whole request bodies (screenshots) before it passes them on, so a worker
# never waits on a slow client; 60 s only catches a request stuck on the database.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5

# Recycle workers now and then, so a slow leak in any library cannot grow without bound.
max_requests = 5000
max_requests_jitter = 500

# Trust X-Forwarded-Proto only from the local nginx (gunicorn's own scheme handling); the app
# reads X-Forwarded-For/-Proto/-Host itself through PROXY_COUNT=1.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Access log on stdout (journald): client address from nginx, the request id the app returns
# (nginx's $request_id when it sent one), status, bytes, milliseconds, user agent.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
access_log_format = (
    '%({x-forwarded-for}i)s rid=%({x-request-id}o)s [%(t)s] "%(r)s" %(s)s %(B)s '
    '%(M)sms "%(f)s" "%(a)s"'
)

# Each worker builds its own app (its own database pool and queue connections).
preload_app = False


def post_worker_init(worker: Any) -> None:
    """Configure the app's own logging (LOG_FORMAT, request ids) in each worker, as `serve` does."""
    from flask import Flask

    from supportwidget import logs

    if isinstance(worker.wsgi, Flask):
        logs.configure(worker.wsgi)
