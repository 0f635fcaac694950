"""Nothing accepted is lost, nothing runs twice: lost messages, a dead broker, a SIGKILLed worker.

Each test has a stack of its own, since it stops, starves or kills workers.
"""

import collections
import time

import pytest

from app import create_app
from config.settings import Settings

pytestmark = pytest.mark.slow


def wait_until_all_terminal(stack, job_ids, timeout):
    deadline = time.monotonic() + timeout
    while True:
        rows = stack.sql("SELECT id::text, status, attempts FROM jobs WHERE id::text = ANY(%s)", (list(job_ids),))
        if all(status in ("succeeded", "failed") for _, status, _ in rows) and len(rows) == len(job_ids):
            return {job_id: (status, attempts) for job_id, status, attempts in rows}
        assert time.monotonic() < deadline, collections.Counter(status for _, status, _ in rows)
        time.sleep(0.25)


def log_count(stack, message):
    """How many times each job id appears in worker log lines with this message."""
    return collections.Counter(line["job_id"] for line in stack.worker_lines() if line.get("message") == message)


def test_jobs_whose_messages_were_flushed_still_run_exactly_once(isolated_stack):
    stack = isolated_stack
    auth = stack.login(stack.create_user())
    job_ids = [stack.client().post("/v1/system/ping", json={}, headers=auth).get_json()["job_id"] for _ in range(100)]
    assert stack.redis.llen("bulk") == 100, "pings travel on the bulk queue"
    stack.redis.delete("bulk")  # every message lost; only the rows remain

    stack.start_worker()
    stack.start_beat()
    outcome = wait_until_all_terminal(stack, job_ids, timeout=90)

    assert {status for status, _ in outcome.values()} == {"succeeded"}
    assert {attempts for _, attempts in outcome.values()} == {1}
    started = log_count(stack, "job started")
    assert all(started[job_id] == 1 for job_id in job_ids), "a job ran twice"


def test_a_job_accepted_while_the_broker_is_down_runs_when_it_is_back(isolated_stack):
    stack = isolated_stack
    user = stack.create_user()
    stack.start_worker()
    stack.start_beat()
    broken = create_app(Settings.from_env({**stack.env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}))
    login = broken.test_client().post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}

    started = time.monotonic()
    accepted = broken.test_client().post("/v1/system/ping", json={}, headers=headers)
    assert accepted.status_code == 202
    assert time.monotonic() - started < 5, "a broker outage must not hang the API"
    job_id = accepted.get_json()["job_id"]
    outcome = wait_until_all_terminal(stack, [job_id], timeout=60)
    assert outcome[job_id] == ("succeeded", 1)


def test_jobs_of_a_sigkilled_worker_all_end_exactly_once(isolated_stack):
    stack = isolated_stack
    auth = stack.login(stack.create_user())
    first = stack.start_worker(concurrency=2)
    job_ids = [
        stack.client().post("/v1/system/ping", json={"sleep_ms": 3000}, headers=auth).get_json()["job_id"]
        for _ in range(6)
    ]
    deadline = time.monotonic() + 30
    while stack.sql("SELECT count(*) FROM jobs WHERE status = 'running'")[0][0] < 2:
        assert time.monotonic() < deadline, "the worker never started the jobs"
        time.sleep(0.05)
    first.kill()
    interrupted = {r[0] for r in stack.sql("SELECT id::text FROM jobs WHERE status = 'running'")}
    assert interrupted, "nothing was running when the worker died"

    stack.start_worker(concurrency=2)
    stack.start_beat()
    outcome = wait_until_all_terminal(stack, job_ids, timeout=120)

    assert {status for status, _ in outcome.values()} == {"succeeded"}
    finished = log_count(stack, "job finished")
    assert all(finished[job_id] == 1 for job_id in job_ids), finished
    assert all(outcome[job_id][1] >= 2 for job_id in interrupted), "interrupted jobs are re-run after the lease"
