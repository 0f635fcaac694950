"""Every statement of the API and the workers has a deadline; migrations have none (issue 10).

``DB_STATEMENT_TIMEOUT_MS`` (default 15 s) is set on each connection when it is opened, so it costs
no round trip. A request stuck behind a lock is cancelled by the server and answers 503 instead of
holding its thread; ``flask db upgrade`` switches it off so a long migration is never cut halfway.
"""

from __future__ import annotations

import subprocess
import threading
import time

import psycopg2
import pytest
from sqlalchemy import text

from app.extensions import db
from tests.conftest import BASE_DATABASE_URL, stack_env
from tests.integration.api.test_http_edge import assert_problem
from tests.support.stack import BIN, ROOT, create_database, drop_database


def test_every_app_connection_carries_the_statement_timeout(stack):
    with stack.context():
        assert db.session.execute(text("SHOW statement_timeout")).scalar() == "15s"
        db.session.rollback()


def test_zero_turns_the_statement_timeout_off(isolated_stack_factory):
    stack = isolated_stack_factory(DB_STATEMENT_TIMEOUT_MS="0")
    with stack.context():
        assert db.session.execute(text("SHOW statement_timeout")).scalar() == "0"
        db.session.rollback()


def test_a_request_stuck_behind_a_lock_is_cancelled_and_answers_503(isolated_stack_factory):
    stack = isolated_stack_factory(DB_STATEMENT_TIMEOUT_MS="300")
    headers = stack.login(stack.create_user())
    assert stack.client().get("/v1/me", headers=headers).status_code == 200

    locker = psycopg2.connect(stack.settings.database_url)
    released = threading.Event()
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        # Without a statement timeout the request would wait for this lock as long as it is held.
        timer = threading.Timer(8.0, lambda: (locker.rollback(), released.set()))
        timer.start()
        started = time.monotonic()
        response = stack.client().get("/v1/me", headers=headers)
        elapsed = time.monotonic() - started
        timer.cancel()
    finally:
        if not released.is_set():
            locker.rollback()
        locker.close()
    assert_problem(response, 503, "service-unavailable")
    assert response.headers["Retry-After"] == "5"
    assert elapsed < 3.0, elapsed
    # The cancelled statement left nothing behind: the next request is served normally.
    assert stack.client().get("/v1/me", headers=headers).status_code == 200


@pytest.mark.slow
def test_flask_db_upgrade_is_never_cut_by_the_statement_timeout(keys):
    name = "estacionate_test_migrate_without_timeout"
    create_database(BASE_DATABASE_URL, name)
    # One millisecond: creating an extension or a GiST index takes longer than that.
    env = {**stack_env(name, 15, keys), "DB_STATEMENT_TIMEOUT_MS": "1"}
    try:
        result = subprocess.run(
            [str(BIN / "flask"), "--app", "app", "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]
        conn = psycopg2.connect(env["DATABASE_URL"])
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM alembic_version")
                assert cur.fetchone() == (1,)
        finally:
            conn.close()
    finally:
        drop_database(BASE_DATABASE_URL, name)
