"""Jobs no worker can run end ``failed`` with ``internal-error`` instead of looping in the relay forever:
a payload under a key that was removed from the ring, and a type no worker knows."""

import base64
import os
import time

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.slow


def new_key(key_id):
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def wait_terminal(stack, job_id, timeout):
    deadline = time.monotonic() + timeout
    while True:
        status, attempts = stack.sql("SELECT status, attempts FROM jobs WHERE id = %s", (job_id,))[0]
        if status in ("succeeded", "failed"):
            return status, attempts
        assert time.monotonic() < deadline, f"still {status} after {timeout}s ({attempts} attempts)"
        time.sleep(0.2)


def test_a_job_whose_key_was_removed_fails_after_its_attempts(isolated_stack_factory, tmp_path):
    k1, k2 = new_key("k1"), new_key("k2")
    submitter = isolated_stack_factory(ENCRYPTION_KEYS=k1, JOB_MAX_ATTEMPTS="3")
    user = submitter.create_user()
    job_id = submitter.client().post("/v1/system/ping", json={}, headers=submitter.login(user)).get_json()["job_id"]

    # The operator removed k1 from the ring before rotating: the workers cannot open the payload.
    workers = Stack({**submitter.env, "ENCRYPTION_KEYS": k2}, tmp_path / "k2-only", "k2only")
    reader = Stack({**submitter.env, "ENCRYPTION_KEYS": f"{k2},{k1}"}, tmp_path / "reader", "reader")
    try:
        workers.start_worker()
        workers.start_beat()
        status, attempts = wait_terminal(submitter, job_id, timeout=60)
        assert (status, attempts) == ("failed", 3)
        job = reader.client().get(f"/v1/jobs/{job_id}", headers=reader.login(user)).get_json()
        assert job["error"]["type"] == "/problems/internal-error"
        assert "k1" not in job["error"]["detail"] and "key" not in job["error"]["detail"]
    finally:
        workers.close()
        reader.close()


def test_a_job_of_a_type_no_worker_knows_fails_after_its_dispatches(isolated_stack_factory, httpserver):
    stack = isolated_stack_factory(JOB_MAX_DISPATCHES="3", JOB_REPUBLISH_AFTER_SECONDS="0.5")
    user = stack.create_user()
    headers = stack.login(user)
    stack.client().get("/v1/me/webhook-secret", headers=headers)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    job_id = (
        stack.client()
        .post("/v1/system/ping", json={"callback_url": httpserver.url_for("/hook")}, headers=headers)
        .get_json()["job_id"]
    )
    # A job type this version does not have (written by a newer release, or retired since).
    stack.redis.delete("bulk")
    stack.sql("UPDATE jobs SET type = 'retired.job', dispatch_after = now() WHERE id = %s", (job_id,))

    stack.start_worker()
    stack.start_beat()
    assert wait_terminal(stack, job_id, timeout=60) == ("failed", 0), "never claimed"
    assert stack.sql("SELECT dispatches FROM jobs WHERE id = %s", (job_id,))[0][0] == 3, "published three times"
    unregistered = [line for line in stack.worker_lines() if "retired.job" in str(line.get("message", ""))]
    assert unregistered, "the worker received the messages and did not know the task"

    job = stack.client().get(f"/v1/jobs/{job_id}", headers=headers).get_json()
    assert job["error"]["type"] == "/problems/internal-error"
    deadline = time.monotonic() + 20
    while not httpserver.log:
        assert time.monotonic() < deadline, "the failure was never reported to the callback"
        time.sleep(0.1)
    assert b'"status":"failed"' in httpserver.log[0][0].get_data().replace(b" ", b"")


def test_a_job_waiting_behind_a_backlog_is_never_failed_for_its_dispatches(isolated_stack_factory):
    """Re-publishes while its queue still holds messages prove nothing: the job is only waiting."""
    stack = isolated_stack_factory(JOB_MAX_DISPATCHES="1", JOB_REPUBLISH_AFTER_SECONDS="0.2")
    headers = stack.login(stack.create_user())
    job_id = stack.client().post("/v1/system/ping", json={}, headers=headers).get_json()["job_id"]
    stack.start_worker(label="system", queues=["system"])  # no worker serves the bulk queue yet
    stack.start_beat()
    deadline = time.monotonic() + 60
    while stack.sql("SELECT dispatches FROM jobs WHERE id = %s", (job_id,))[0][0] < 3:
        assert time.monotonic() < deadline, "the relay never re-published the waiting job"
        time.sleep(0.1)
    assert stack.sql("SELECT status FROM jobs WHERE id = %s", (job_id,))[0][0] == "queued"
    stack.start_worker(label="bulk", queues=["bulk"])
    assert wait_terminal(stack, job_id, timeout=30) == ("succeeded", 1)
