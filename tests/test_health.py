"""/healthz: database, queue and worker heartbeat, as a load balancer or monitor reads it."""

from __future__ import annotations

from supportwidget.models import db
from supportwidget.platform.heartbeat import beat

from conftest import make_app


def test_without_a_worker_heartbeat_the_service_is_degraded(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "ok" and response.json["queue"] == "ok"
    assert response.json["worker"] == "no recent heartbeat"


def test_with_a_recent_heartbeat_the_service_is_healthy(app, client):
    beat("test-worker")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["worker"] == "ok"


def test_an_unreachable_queue_is_reported(database_url, tmp_path):
    # Nothing listens on port 1: the Redis queue storage cannot be reached.
    app = make_app(database_url, tmp_path, QUEUE_URL="redis://127.0.0.1:1/0", QUEUE_IMMEDIATE=False)
    with app.app_context():
        beat("test-worker")
        response = app.test_client().get("/healthz")
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 503
    assert response.json["queue"].startswith("error: ")
    assert response.json["database"] == "ok"


def test_only_one_worker_holds_the_scheduler_lease_until_it_dies(app):
    from datetime import timedelta

    from supportwidget.models import Heartbeat
    from supportwidget.platform.heartbeat import SCHEDULER, take_scheduler_lease

    assert take_scheduler_lease("worker-a", seconds=45) is True
    assert take_scheduler_lease("worker-b", seconds=45) is False  # a holds it
    assert take_scheduler_lease("worker-a", seconds=45) is True  # a renews
    lease = db.session.get(Heartbeat, SCHEDULER)
    lease.beat_at -= timedelta(seconds=46)  # a stopped renewing: it died
    db.session.commit()
    assert take_scheduler_lease("worker-b", seconds=45) is True
    assert take_scheduler_lease("worker-a", seconds=45) is False


def test_postgresql_connections_carry_timeouts(app, database_url):
    import pytest
    import sqlalchemy as sa

    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    assert db.session.execute(sa.text("SHOW statement_timeout")).scalar() == "30s"
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["connect_timeout"] == 10


def test_database_url_options_survive_the_timeouts():
    from sqlalchemy.engine import make_url

    from supportwidget.platform.database import postgresql_timeouts

    url = make_url("postgresql+psycopg://db/app?options=-csearch_path%3Dtenant&connect_timeout=3")
    args = postgresql_timeouts(url.query, 30_000)
    assert args == {"options": "-csearch_path=tenant -c statement_timeout=30000"}
    own = make_url("postgresql+psycopg://db/app?options=-c%20statement_timeout%3D5000")
    assert postgresql_timeouts(own.query, 30_000)["options"] == "-c statement_timeout=5000"


def test_a_search_path_in_the_database_url_is_used(database_url, tmp_path):
    import pytest
    import sqlalchemy as sa

    from conftest import make_app

    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS tenant_b CASCADE; CREATE SCHEMA tenant_b"))
    try:
        app = make_app(f"{database_url}?options=-csearch_path%3Dtenant_b", tmp_path)
        with app.app_context():
            assert db.session.execute(sa.text("SHOW search_path")).scalar() == "tenant_b"
            assert db.session.execute(sa.text("SHOW statement_timeout")).scalar() == "30s"
            db.engine.dispose()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA tenant_b CASCADE"))
        engine.dispose()
