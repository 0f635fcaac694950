"""Leases are short and renewed while a worker lives: a job cut short by a SIGKILL (a deploy, the
OOM killer) is taken over within about a lease, never when its hours-long time limit runs out,
and a job that runs for many leases is never taken over while its worker is alive."""

import base64
import collections
import os
import time

import pytest

from app import jobs
from app.services.audit import Actor
from app.unit_of_work import unit_of_work
from tests.support.stack import Stack

pytestmark = pytest.mark.slow


def new_key(key_id):
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def job_row(stack, job_id):
    return stack.sql("SELECT status, attempts, progress_done FROM jobs WHERE id = %s", (job_id,))[0]


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.1)
    return time.monotonic()


def log_count(stack, message):
    return collections.Counter(line.get("job_id") for line in stack.worker_lines() if line.get("message") == message)


def test_a_long_job_whose_worker_was_sigkilled_is_taken_over_within_a_lease(isolated_stack_factory, tmp_path):
    """``keys.rotate`` may run for 6 hours; killed mid-run, it must resume within seconds of its lease."""
    k1, k2 = new_key("k1"), new_key("k2")
    old = isolated_stack_factory(ENCRYPTION_KEYS=k1)
    with old.context(), unit_of_work():
        seed = jobs.submit("system.ping", {}, Actor.system())["job_id"]
    # 20,000 finished jobs whose payloads are under k1: the rotation re-encrypts each one.
    old.sql(
        "INSERT INTO jobs (id, type, status, payload, dispatch_after, attempts, version, created_at, updated_at,"
        " finished_at) SELECT gen_random_uuid(), 'system.ping', 'succeeded', j.payload, now(), 1, 2, now(), now(),"
        " now() FROM jobs j, generate_series(1, 20000) WHERE j.id = %s",
        (seed,),
    )
    rotating = Stack({**old.env, "ENCRYPTION_KEYS": f"{k2},{k1}"}, tmp_path / "rotating", "rotating")
    try:
        rotating.start_worker(concurrency=1, label="system", queues=["system"])
        rotating.start_beat()  # the relay, every second
        doomed = rotating.start_worker(concurrency=1, label="bulk", queues=["bulk"])
        with rotating.context(), unit_of_work():
            job_id = jobs.submit("keys.rotate", {}, Actor.system())["job_id"]
        wait_for(lambda: (job_row(rotating, job_id)[2] or 0) > 0, 60, "the rotation's first batch")
        doomed.kill()
        assert job_row(rotating, job_id)[0] == "running", "killed mid-run"

        rotating.start_worker(concurrency=1, label="bulk", queues=["bulk"])  # the deploy's new worker
        replaced = time.monotonic()
        taken_over = wait_for(lambda: job_row(rotating, job_id)[1] >= 2, 60, "the takeover") - replaced
        wait_for(lambda: job_row(rotating, job_id)[0] in ("succeeded", "failed"), 180, "the rotation's end")

        status, attempts, _ = job_row(rotating, job_id)
        assert (status, attempts) == ("succeeded", 2)
        lease = rotating.settings.job_lease_seconds
        assert taken_over < lease + 10, f"taken over {taken_over:.1f}s after the new worker was up (lease {lease}s)"
        assert log_count(rotating, "job finished")[job_id] == 1
        stale = rotating.sql(
            "SELECT count(*) FROM jobs WHERE convert_from(substring(payload from 3 for get_byte(payload, 1)),"
            " 'SQL_ASCII') <> 'k2'"
        )[0][0]
        assert stale == 0, "every payload is under the new key: the second attempt finished the work"
    finally:
        rotating.close()


def test_a_job_running_for_several_leases_is_not_taken_over_while_its_worker_lives(isolated_stack_factory):
    stack = isolated_stack_factory(JOB_LEASE_SECONDS="1.5")
    headers = stack.login(stack.create_user())
    stack.start_worker(concurrency=2, label="bulk", queues=["bulk"])  # a free child could take it over
    stack.start_worker(concurrency=1, label="system", queues=["system"])
    stack.start_beat()  # the relay runs every second, looking for expired leases
    accepted = stack.client().post("/v1/system/ping", json={"sleep_ms": 5000}, headers=headers)
    job_id = accepted.get_json()["job_id"]
    job = stack.wait_job(headers, job_id, timeout=40)
    assert (job["status"], job["attempts"]) == ("succeeded", 1), "over three leases, one claim"
    assert log_count(stack, "job started")[job_id] == 1
