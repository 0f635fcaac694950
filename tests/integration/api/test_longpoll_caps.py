"""Long-polls cannot take every API thread (issue 10, item 7).

``GET /v1/jobs/{id}?wait=N`` holds a gunicorn thread while it waits. At most
``LONGPOLL_MAX_PER_USER`` (4) of one user's long-polls wait at once across all processes, and at most
``LONGPOLL_MAX_PER_PROCESS`` (the threads less a reserve for short requests) in one process; a
long-poll over either cap answers at once with the job's current document (200, as ``?wait=0``
would). The API runs under gunicorn as in production, without a worker, so the jobs stay queued
until the test starts one.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
import redis
import requests

pytestmark = pytest.mark.slow


def submit_ping(base: str, headers: dict[str, str]) -> str:
    response = requests.post(base + "/v1/system/ping", json={}, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def long_poll(base: str, headers: dict[str, str], job_id: str, wait: int = 30) -> tuple[int, str, float, str | None]:
    """Status, job status, seconds taken and the ``Retry-After`` header of one long-poll."""
    started = time.monotonic()
    response = requests.get(f"{base}/v1/jobs/{job_id}?wait={wait}", headers=headers, timeout=wait + 30)
    return (
        response.status_code,
        response.json()["status"],
        time.monotonic() - started,
        response.headers.get("Retry-After"),
    )


def wait_until_done(futures: list[Future], count: int, timeout: float) -> list[Future]:
    deadline = time.monotonic() + timeout
    while True:
        done = [f for f in futures if f.done()]
        if len(done) >= count:
            return done
        assert time.monotonic() < deadline, f"only {len(done)} of {len(futures)} answered within {timeout}s"
        time.sleep(0.05)


def healthz_seconds(base: str) -> float:
    started = time.monotonic()
    response = requests.get(base + "/healthz", timeout=30)
    assert response.status_code == 200
    return time.monotonic() - started


def bearer(stack, user) -> dict[str, str]:
    """Logged in over the in-process app: the same database and Redis as the gunicorn API."""
    return stack.login(user)


def test_one_user_holding_40_long_polls_cannot_starve_healthz(isolated_stack):
    stack = isolated_stack
    base = stack.start_api()
    headers = bearer(stack, stack.create_user())
    job_id = submit_ping(base, headers)

    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = [pool.submit(long_poll, base, headers, job_id) for _ in range(40)]
        over_cap = wait_until_done(futures, 36, timeout=10)
        assert healthz_seconds(base) < 1.0
        assert len([f for f in futures if f.done()]) == 36, "exactly the user's cap (4) is still waiting"
        for future in over_cap:
            status, job_status, elapsed, retry_after = future.result()
            assert (status, job_status) == (200, "queued")  # the current document, at once
            assert elapsed < 5.0, elapsed
            assert retry_after == "1"  # when to poll again: a client polling at once would spin
        stack.start_worker()  # the job finishes, and wakes the four that were waiting for it
        wait_until_done(futures, 40, timeout=40)
    held = [f.result() for f in futures if f not in over_cap]
    assert [(status, job_status, retry_after) for status, job_status, _, retry_after in held] == [
        (200, "succeeded", None)
    ] * 4


def test_a_process_lets_at_most_its_cap_wait_whoever_asks(isolated_stack_factory):
    stack = isolated_stack_factory(LONGPOLL_MAX_PER_PROCESS="2")
    base = stack.start_api()  # two gunicorn processes, so at most 4 wait in all
    users = [bearer(stack, stack.create_user()) for _ in range(3)]
    jobs = [(headers, submit_ping(base, headers)) for headers in users]

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(long_poll, base, headers, job_id) for headers, job_id in jobs for _ in range(4)]
        wait_until_done(futures, 8, timeout=10)
        assert healthz_seconds(base) < 1.0
        stack.start_worker()
        wait_until_done(futures, 12, timeout=40)
    answers = [f.result() for f in futures]
    assert all(status == 200 for status, _, _, _ in answers)
    waited = [a for a in answers if a[1] == "succeeded"]
    at_once = [a for a in answers if a[1] == "queued"]
    assert 2 <= len(waited) <= 4, answers  # one or both processes took their two
    assert len(at_once) == 12 - len(waited) and all(elapsed < 5.0 for _, _, elapsed, _ in at_once), answers
    assert all(retry_after == "1" for _, _, _, retry_after in at_once), answers
    assert all(retry_after is None for _, _, _, retry_after in waited), answers


# --- the slots themselves ---------------------------------------------------------------------


def LongPolls(*args, **kwargs):
    from app.jobs.longpoll import LongPolls as cls

    return cls(*args, **kwargs)


def test_a_users_slots_are_shared_by_every_process(stack):
    user = uuid.uuid4()
    one, two = LongPolls(stack.redis, 2, 10), LongPolls(stack.redis, 2, 10)  # two API processes
    first, second = one.take(user, 5), two.take(user, 5)
    assert first is not None and second is not None
    assert one.take(user, 5) is None and two.take(user, 5) is None
    one.give_back(first)
    third = two.take(user, 5)
    assert third is not None
    two.give_back(second)
    two.give_back(third)


def test_a_slot_never_given_back_frees_itself_when_its_wait_is_over(stack):
    """A process killed mid-wait cannot leak its slots: each one expires with its wait."""
    user = uuid.uuid4()
    crashed, survivor = LongPolls(stack.redis, 1, 10, grace_seconds=0.2), LongPolls(stack.redis, 1, 10)
    assert crashed.take(user, 1) is not None  # and never given back
    assert survivor.take(user, 1) is None
    deadline = time.monotonic() + 5
    while (slot := survivor.take(user, 1)) is None:
        assert time.monotonic() < deadline, "the dead process's slot never expired"
        time.sleep(0.05)
    survivor.give_back(slot)
    assert stack.redis.zcard(f"longpoll:{user}") == 0


def test_the_process_cap_holds_whoever_asks(stack):
    polls = LongPolls(stack.redis, 100, 2)
    first, second = polls.take(uuid.uuid4(), 5), polls.take(uuid.uuid4(), 5)
    assert first is not None and second is not None
    assert polls.take(uuid.uuid4(), 5) is None
    polls.give_back(first)
    third = polls.take(uuid.uuid4(), 5)
    assert third is not None
    polls.give_back(second)
    polls.give_back(third)


def test_a_full_process_answers_without_asking_redis():
    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens there
    assert LongPolls(nowhere, 100, 0).take(uuid.uuid4(), 5) is None
