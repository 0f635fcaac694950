"""``/metrics`` is for the scraper only, and a scrape costs a bounded query (issue 10, item 14).

Decision: with ``METRICS_TOKEN`` set, a scrape needs ``Authorization: Bearer <token>`` (wrong or
missing: 401 ``unauthenticated``); without it the endpoint is open in development and test, and
in production it does not exist (404) and a warning says so at start.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import secrets

import psycopg2
import pytest
from sqlalchemy import event

from app import create_app
from app.extensions import db
from config.settings import ConfigurationError, Settings
from tests.integration.api.test_http_edge import assert_problem
from tests.support.fake_twilio import production_twilio_env

TOKEN = secrets.token_urlsafe(32)


def app_with(stack, **env):
    return create_app(Settings.from_env({**stack.env, **env}))


def production_env() -> dict[str, str]:
    """Keys production accepts (no development markers)."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        **production_twilio_env(),
    }


def scrape(client, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", headers=headers)


def test_a_scrape_needs_the_metrics_token_when_one_is_set(stack):
    client = app_with(stack, METRICS_TOKEN=TOKEN).test_client()
    for response in (
        scrape(client, None),
        scrape(client, "wrong-" + TOKEN),
        scrape(client, TOKEN[:-1]),
        client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}),
    ):
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "http_requests_total" not in response.get_data(as_text=True)
    response = scrape(client)
    assert response.status_code == 200
    assert "celery_queue_depth" in response.get_data(as_text=True)


def test_without_a_token_metrics_are_open_outside_production(stack):
    assert stack.settings.metrics_token == ""
    assert scrape(stack.client(), None).status_code == 200


def test_production_without_a_token_has_no_metrics_and_says_so_at_start(stack, caplog):
    with caplog.at_level(logging.WARNING):
        app = app_with(stack, **production_env())
    assert any("METRICS_TOKEN" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert_problem(scrape(app.test_client(), None), 404, "not-found")
    assert_problem(scrape(app.test_client(), "anything"), 404, "not-found")


def test_production_with_a_token_serves_metrics_to_the_scraper_only(stack):
    client = app_with(stack, **production_env(), METRICS_TOKEN=TOKEN).test_client()
    assert_problem(scrape(client, None), 401, "unauthenticated")
    assert scrape(client).status_code == 200


@pytest.mark.parametrize("token", ["change-me", "short-token"])
def test_production_refuses_a_weak_metrics_token(stack, token):
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN"):
        Settings.from_env({**stack.env, **production_env(), "METRICS_TOKEN": token})


def test_the_metrics_token_is_never_in_the_public_settings(stack):
    settings = Settings.from_env({**stack.env, "METRICS_TOKEN": TOKEN})
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.as_public_dict())


# --- cost -------------------------------------------------------------------------------------


@contextlib.contextmanager
def recorded(app):
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_scrape_reads_only_unfinished_jobs_through_the_partial_index(stack):
    with recorded(stack.app) as statements:
        assert scrape(stack.client(), None).status_code == 200
    on_jobs = [(sql, params) for sql, params in statements if re.search(r"\bjobs\b", sql)]
    assert len(on_jobs) == 1, statements
    sql, params = on_jobs[0]
    assert re.search(r"jobs\.status IN", sql), sql
    # The planner can answer it from a partial index over unfinished jobs (ix_jobs_relay or
    # ix_jobs_owner_unfinished, both WHERE status IN ('queued', 'running')): with sequential scans
    # priced out, that is the plan it picks, which proves the predicate matches.
    conn = psycopg2.connect(stack.settings.database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    # An index scan or a bitmap index scan (the planner's choice for a few rows) both prove it.
    index = r"(ix_jobs_relay|ix_jobs_owner_unfinished)"
    assert re.search(rf"(Index (Only )?Scan using|Bitmap Index Scan on) {index}", plan), plan


def test_finished_jobs_are_not_counted_and_queue_depth_covers_every_queue(isolated_stack):
    stack = isolated_stack
    headers = stack.login(stack.create_user())
    client = stack.client()
    worker = stack.start_worker()
    finished = [client.post("/v1/system/ping", json=body, headers=headers) for body in ({}, {}, {"fail": True})]
    for response in finished:
        assert stack.wait_job(headers, response.get_json()["job_id"])["status"] in ("succeeded", "failed")
    worker.stop()
    for _ in range(3):
        assert client.post("/v1/system/ping", json={}, headers=headers).status_code == 202

    text = scrape(client, None).get_data(as_text=True)
    jobs = dict(re.findall(r'^jobs\{status="(\w+)",type="system\.ping"\} ([\d.]+)$', text, re.M))
    assert jobs == {"queued": "3.0"}, text
    depths = re.findall(r'^celery_queue_depth\{queue="([^"]+)"\} ([\d.]+)$', text, re.M)
    assert depths, text
    assert sum(float(n) for _, n in depths) == 3.0, depths
