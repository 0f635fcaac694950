"""Every job type names a declared queue, and routing follows the table (one place per type)."""

from app.domain.notifications import DELIVERY_POLICY
from app.jobs.types import BULK, INTERACTIVE, JOB_TYPES, QUEUES, max_attempts, task_routes


def test_every_job_type_runs_on_a_declared_queue():
    assert {jt.queue for jt in JOB_TYPES.values()} <= set(QUEUES)


def test_routes_are_derived_from_the_job_types():
    assert task_routes() == {name: {"queue": jt.queue} for name, jt in JOB_TYPES.items()}


def test_what_a_person_waits_for_is_interactive_and_long_work_is_bulk():
    assert {n for n, jt in JOB_TYPES.items() if jt.queue == INTERACTIVE} == {
        "booking.create",
        "booking.cancel",
        "notification.send",
    }
    assert JOB_TYPES["system.ping"].queue == JOB_TYPES["keys.rotate"].queue == BULK


def test_time_limits_bound_a_run_soft_before_hard():
    assert all(0 < jt.soft_time_limit < jt.time_limit for jt in JOB_TYPES.values())


def test_a_type_may_claim_more_attempts_than_the_default_for_its_own_retries():
    assert max_attempts("booking.create", 5) == 5
    assert max_attempts("retired.job", 5) == 5
    # Every send the delivery policy allows, plus room for attempts that crashed.
    assert max_attempts("notification.send", 5) > DELIVERY_POLICY.max_attempts
