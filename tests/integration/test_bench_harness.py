"""The benchmark harness end to end: ``python -m bench --scenario queue --quick`` as a subprocess.

It runs against the session's servers (``DATABASE_URL`` / ``REDIS_URL`` as ``make test`` passes
them), in Redis db 0, which no other test uses (the session stack has db 1, isolated stacks 2-15);
``--flush-redis`` because the suite owns that server. The figures must be produced and the
scenario's correctness checks must pass; no timing is ever asserted.
"""

import json
import os
import subprocess

import psycopg2
import pytest
import redis

from tests.conftest import BASE_DATABASE_URL, BASE_REDIS_URL
from tests.support.stack import BIN, ROOT, with_database, with_redis_db

pytestmark = pytest.mark.slow

BENCH_REDIS_DB = 0


def test_queue_scenario_quick_produces_figures_and_passes_its_checks(tmp_path):
    results = tmp_path / "results" / "latest.json"
    redis_url = with_redis_db(BASE_REDIS_URL, BENCH_REDIS_DB)
    env = {**os.environ, "DATABASE_URL": BASE_DATABASE_URL, "REDIS_URL": redis_url}
    run = subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "bench",
            "--scenario",
            "queue",
            "--quick",
            "--flush-redis",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-6000:]}"

    document = json.loads(results.read_text())
    assert document["error"] is None
    assert document["all_checks_passed"] is True
    assert document["stack"]["postgres"] == "DATABASE_URL" and document["stack"]["redis"] == "REDIS_URL"
    assert document["stack"]["beat"] == "off"
    (queue,) = document["scenarios"]
    assert queue["scenario"] == "queue"
    for side in ("figure", "baseline"):
        assert queue[side]["value"] > 0, queue[side]
        assert queue[side]["operations"] == 50
        assert queue[side]["latency_ms"]["p50"] > 0 and queue[side]["latency_ms"]["p99"] > 0
        assert queue[side]["errors"] == []
    assert queue["ratio"] > 0 and queue["target"] == 0.7
    assert isinstance(queue["meets_target"], bool)  # reported, never asserted
    assert queue["checks"] == {
        "all_jobs_completed": True,
        "all_succeeded": True,
        "exactly_once": True,
        "count_matches": True,
        "baseline_all_replied": True,
        "not_throttled": True,
    }
    assert queue["details"]["sql"]["attempts_eq_1"] == queue["details"]["jobs"] == 50
    assert "queue" in run.stdout and "jobs/s" in run.stdout and "tasks/s" in run.stdout

    # It cleaned up after itself: its database is gone and its Redis db is empty again.
    conn = psycopg2.connect(with_database(BASE_DATABASE_URL, "postgres"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (document["stack"]["database"],))
            assert cur.fetchone() is None
    finally:
        conn.close()
    assert redis.Redis.from_url(redis_url).dbsize() == 0
