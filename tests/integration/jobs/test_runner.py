"""The job runner's guarantees, driven in-process against the real database and broker.

A handler here is any function; the runner must claim at most once, commit the handler's work
only together with the terminal state, retry crashes, and give up after the attempt limit.
Each test has a stack of its own with no worker consuming, so only the test runs its jobs.
"""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from app import jobs
from app.extensions import db
from app.jobs.runner import LeaseLost, claim
from app.services import system
from app.services.audit import Actor
from app.unit_of_work import autocommit_engine, unit_of_work
from tests.support.waiting import wait_until


def new_job(stack, user, **payload):
    with stack.context(), unit_of_work():
        return jobs.submit("system.ping", payload, Actor("human", uuid.UUID(user["id"])))["job_id"]


def status_of(stack, job_id):
    return stack.sql("SELECT status, attempts, version FROM jobs WHERE id = %s", (job_id,))[0]


def marker_count(stack, marker):
    return stack.sql("SELECT count(*) FROM audit_logs WHERE action = %s", (marker,))[0][0]


def test_a_finished_job_is_never_run_again(isolated_stack):
    stack, user = isolated_stack, isolated_stack.create_user()
    job_id = new_job(stack, user)
    calls = []
    with stack.context():
        jobs.execute(job_id, "system.ping", lambda run: calls.append(run.id) or {"n": 1})
        jobs.execute(job_id, "system.ping", lambda run: calls.append(run.id) or {"n": 2})
    assert len(calls) == 1
    assert status_of(stack, job_id)[:2] == ("succeeded", 1)


def test_the_handlers_changes_commit_only_with_the_terminal_state(isolated_stack):
    stack, user = isolated_stack, isolated_stack.create_user()
    """A worker whose lease was taken over must not apply its work: everything rolls back."""
    job_id = new_job(stack, user)
    marker = f"test.marker.{uuid.uuid4().hex}"

    def handler(run):
        db.session.execute(
            text("INSERT INTO audit_logs (actor_type, action, metadata) VALUES ('job', :a, '{}')"), {"a": marker}
        )
        # Meanwhile another worker takes the job over (its version moves on).
        stack.sql("UPDATE jobs SET version = version + 1 WHERE id = %s", (job_id,))
        return {}

    with stack.context():
        jobs.execute(job_id, "system.ping", handler)
    assert marker_count(stack, marker) == 0
    assert status_of(stack, job_id)[0] == "running"


def test_a_typed_failure_rolls_back_the_work_and_records_the_problem(isolated_stack):
    stack, user = isolated_stack, isolated_stack.create_user()
    from app.problems import Problem

    job_id = new_job(stack, user)
    marker = f"test.marker.{uuid.uuid4().hex}"

    def handler(run):
        db.session.execute(
            text("INSERT INTO audit_logs (actor_type, action, metadata) VALUES ('job', :a, '{}')"), {"a": marker}
        )
        raise Problem("conflict", "someone else won")

    with stack.context():
        jobs.execute(job_id, "system.ping", handler)
    assert marker_count(stack, marker) == 0
    assert status_of(stack, job_id)[0] == "failed"
    headers = stack.login(user)
    error = stack.client().get(f"/v1/jobs/{job_id}", headers=headers).get_json()["error"]
    assert error["type"] == "/problems/conflict" and error["detail"] == "someone else won"


def test_a_crashed_attempt_is_retried_by_a_worker(isolated_stack):
    """The first attempt raises; the runner re-queues it and the real worker's attempt succeeds."""
    worker, user = isolated_stack, isolated_stack.create_user()
    job_id = new_job(worker, user)
    worker.redis.delete("bulk")  # only the runner's retry message may start the second attempt

    def crash(run):
        raise RuntimeError("transient failure")

    with worker.context():
        jobs.execute(job_id, "system.ping", crash)
    assert status_of(worker, job_id)[:2] == ("queued", 1)
    worker.start_worker()
    headers = worker.login(user)
    job = worker.wait_job(headers, job_id, timeout=30)
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2


def test_a_job_gives_up_after_the_attempt_limit(isolated_stack):
    stack, user = isolated_stack, isolated_stack.create_user()
    job_id = new_job(stack, user)
    limit = stack.settings.job_max_attempts
    stack.sql("UPDATE jobs SET attempts = %s WHERE id = %s", (limit - 1, job_id))
    with stack.context():
        jobs.execute(job_id, "system.ping", lambda run: 1 / 0)
    status, attempts, _ = status_of(stack, job_id)
    assert (status, attempts) == ("failed", limit)
    headers = stack.login(user)
    error = stack.client().get(f"/v1/jobs/{job_id}", headers=headers).get_json()["error"]
    assert error["type"] == "/problems/internal-error"
    assert "ZeroDivision" not in error["detail"]


def test_a_running_job_cannot_be_claimed_while_its_lease_lasts(isolated_stack):
    stack, user = isolated_stack, isolated_stack.create_user()
    job_id = new_job(stack, user)
    with stack.context():
        assert claim(job_id, "system.ping") is not None
        assert claim(job_id, "system.ping") is None
    stack.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (job_id,))
    with stack.context():
        taken_over = claim(job_id, "system.ping")
    assert taken_over is not None and taken_over.attempts == 2


def test_progress_renews_the_lease_and_detects_a_takeover(isolated_stack):
    stack, user = isolated_stack, isolated_stack.create_user()
    job_id = new_job(stack, user)
    with stack.context():
        run = claim(job_id, "system.ping")
        run.progress(1, 10)
        db.session.commit()
        stack.sql("UPDATE jobs SET version = version + 1 WHERE id = %s", (job_id,))
        with pytest.raises(LeaseLost):
            run.progress(2, 10)
        db.session.rollback()
    headers = stack.login(user)
    assert stack.client().get(f"/v1/jobs/{job_id}", headers=headers).get_json()["progress"] == {"done": 1, "total": 10}


def test_the_heartbeat_keeps_the_lease_of_a_job_that_runs_for_several_leases(isolated_stack_factory):
    stack = isolated_stack_factory(JOB_LEASE_SECONDS="1")
    user = stack.create_user()
    job_id = new_job(stack, user)
    seen = {}

    def lease_ends():
        return stack.sql("SELECT lease_expires_at FROM jobs WHERE id = %s", (job_id,))[0][0]

    def long_handler(run):
        # The work lasts until the heartbeat has carried the lease two leases past the claim's.
        first = lease_ends()
        wait_until(lambda: lease_ends() >= first + timedelta(seconds=2), timeout=15, message="no heartbeat renewed it")
        seen["lease_holds"] = stack.sql("SELECT lease_expires_at > now() FROM jobs WHERE id = %s", (job_id,))[0][0]
        with stack.app.app_context():  # another worker tries to take it over meanwhile
            seen["taken_over"] = claim(job_id, "system.ping") is not None
        return {}

    with stack.context():
        jobs.execute(job_id, "system.ping", long_handler)
    assert seen == {"lease_holds": True, "taken_over": False}
    assert status_of(stack, job_id)[:2] == ("succeeded", 1)


def test_a_short_job_costs_its_claim_and_its_finish_and_nothing_more(isolated_stack):
    """The heartbeat costs nothing for a job shorter than a third of a lease: no statement at all."""
    stack, user = isolated_stack, isolated_stack.create_user()
    job_id = new_job(stack, user)
    statements = []
    with stack.context():
        engines = (db.engine, autocommit_engine())  # the claim commits by itself, on the latter

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        with stack.context():
            jobs.execute(job_id, "system.ping", system.ping)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    assert status_of(stack, job_id)[0] == "succeeded"
    assert len(statements) == 2, statements
    assert all(s.lstrip().startswith("UPDATE jobs") for s in statements)


def test_a_payload_no_key_can_open_is_a_failed_attempt_not_a_stuck_claim(isolated_stack):
    """The claim commits before decrypting, so the attempts count and the job ends ``internal-error``."""
    stack, user = isolated_stack, isolated_stack.create_user()
    job_id = new_job(stack, user)
    # A ciphertext under a key id the ring does not hold (as after removing a key too early).
    stack.sql("UPDATE jobs SET payload = %s WHERE id = %s", (b"\x01\x04gone" + bytes(40), job_id))
    calls = []
    limit = stack.settings.job_max_attempts
    with stack.context():
        for _ in range(limit):
            jobs.execute(job_id, "system.ping", lambda run: calls.append(run) or {})
    assert calls == [], "the handler never sees an unreadable payload"
    assert status_of(stack, job_id)[:2] == ("failed", limit)
    response = stack.client().get(f"/v1/jobs/{job_id}", headers=stack.login(user))
    assert response.status_code == 200, "the job document never needs the payload"
    assert response.get_json()["error"]["type"] == "/problems/internal-error"
