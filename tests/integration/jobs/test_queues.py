"""Separate queues: one user's flood of long jobs never stalls another user's booking.

``interactive`` (bookings), ``bulk`` (pings, recalculation, generation, rotation) and ``system``
(relay, schedules, webhooks) are served by different worker processes, as in production.
"""

import concurrent.futures
import threading
import time

import psutil
import pytest
import requests

from tests.support.bookings import bookable_building, booking_body

pytestmark = pytest.mark.slow

EXPECTED_QUEUES = {
    "booking.create": "interactive",
    "booking.cancel": "interactive",
    "system.ping": "bulk",
    "pricing.recalculate": "bulk",
    "availability.generate": "bulk",
    "keys.rotate": "bulk",
    "jobs.relay": "system",
    "webhooks.deliver": "system",
    "webhooks.deliver_event": "system",
}


def queue_of(celery, task_name):
    return celery.amqp.router.route({}, task_name)["queue"].name


def test_every_task_is_routed_to_its_queue(stack):
    celery = stack.app.extensions["celery"]
    assert {name: queue_of(celery, name) for name in EXPECTED_QUEUES} == EXPECTED_QUEUES
    scheduled = {entry["task"] for entry in celery.conf.beat_schedule.values()}
    assert scheduled and {queue_of(celery, name) for name in scheduled} == {"system"}


def test_recovery_messages_never_expire_unexecuted(stack):
    relay = stack.app.extensions["celery"].conf.beat_schedule["jobs.relay"]
    assert "expires" not in relay.get("options", {})


def job_status(stack, job_id):
    return stack.sql("SELECT status FROM jobs WHERE id = %s", (job_id,))[0][0]


def wait_terminal(stack, job_id, timeout):
    started = time.monotonic()
    while job_status(stack, job_id) not in ("succeeded", "failed"):
        assert time.monotonic() - started < timeout, f"job still {job_status(stack, job_id)} after {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - started


def flood(stack, headers, count, sleep_ms=5000):
    ids = []
    for _ in range(count):
        response = stack.client().post("/v1/system/ping", json={"sleep_ms": sleep_ms}, headers=headers)
        assert response.status_code == 202, response.get_json()
        ids.append(response.get_json()["job_id"])
    return ids


def bulk_started(stack, ping_ids, at_least, timeout=30):
    deadline = time.monotonic() + timeout
    while (
        stack.sql("SELECT count(*) FROM jobs WHERE status = 'running' AND id::text = ANY(%s)", (ping_ids,))[0][0]
        < at_least
    ):
        assert time.monotonic() < deadline, "the bulk worker never started the flood"
        time.sleep(0.05)


def test_a_booking_does_not_wait_behind_another_users_flood_of_long_jobs(isolated_stack):
    stack = isolated_stack
    resident, blocks = bookable_building(stack, 1)
    flooder = stack.login(stack.create_user())
    stack.start_worker(concurrency=2, label="interactive", queues=["interactive", "system"])
    stack.start_worker(concurrency=2, label="bulk", queues=["bulk"])

    pings = flood(stack, flooder, 100)  # 100 x 5 s on two bulk children: over four minutes of work
    refused = stack.client().post("/v1/system/ping", json={"sleep_ms": 5000}, headers=flooder)
    assert refused.status_code == 429, "the 101st unfinished job is over the quota"
    bulk_started(stack, pings, at_least=2)

    accepted = stack.client().post("/v1/bookings", json=booking_body(blocks[0]), headers=resident)
    assert accepted.status_code == 202, accepted.get_json()
    elapsed = wait_terminal(stack, accepted.get_json()["job_id"], timeout=5)
    assert job_status(stack, accepted.get_json()["job_id"]) == "succeeded"
    assert elapsed < 5
    assert stack.sql("SELECT count(*) FROM jobs WHERE status = 'queued' AND id::text = ANY(%s)", (pings,))[0][0] > 90


def wait_for_connections(api, count, timeout=10):
    """Until the API's port holds ``count`` established client connections (the long-polls are in)."""
    port = int(api.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while True:
        held = [
            c
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == port
        ]
        if len(held) >= count:
            return
        assert time.monotonic() < deadline, f"only {len(held)} of {count} connections reached the API"
        time.sleep(0.05)


def test_one_users_flood_and_forty_long_polls_never_stall_another_user(isolated_stack):
    """The issue's capacity test, through the real gunicorn API."""
    stack = isolated_stack
    resident, blocks = bookable_building(stack, 1)
    flooder = stack.login(stack.create_user())
    stack.start_worker(concurrency=2, label="interactive", queues=["interactive", "system"])
    stack.start_worker(concurrency=2, label="bulk", queues=["bulk"])
    api = stack.start_api()

    pings = flood(stack, flooder, 100)
    bulk_started(stack, pings, at_least=2)

    stop = threading.Event()

    def long_poll(job_id):
        """The attacker's client: poll again at once, ignoring Retry-After, until told to stop.

        Over the user's cap a poll answers at once, so the 40 never sit in the API together; what
        they can hold is the cap's 4 threads, while the other 36 hammer it with whole requests."""
        codes = set()
        with requests.Session() as session:
            while not stop.is_set():
                codes.add(session.get(f"{api}/v1/jobs/{job_id}?wait=30", headers=flooder, timeout=40).status_code)
        return codes

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        try:
            polls = [pool.submit(long_poll, job_id) for job_id in pings[-40:]]
            _while_flooded(stack, api, resident, blocks)
        finally:
            stop.set()  # also when an assertion failed: the pool's exit waits for its threads
        assert [p.result() for p in polls] == [{200}] * 40


def _while_flooded(stack, api, resident, blocks):
    """/healthz answers within 1 s and another user's booking finishes within 5 s."""
    wait_for_connections(api, 4)  # LONGPOLL_MAX_PER_USER long-polls held, the rest re-polling

    started = time.monotonic()
    healthz = requests.get(f"{api}/healthz", timeout=10)
    assert healthz.status_code == 200
    assert time.monotonic() - started < 1, "/healthz must answer within 1 s"

    started = time.monotonic()
    accepted = requests.post(f"{api}/v1/bookings", json=booking_body(blocks[0]), headers=resident, timeout=10)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    while job_status(stack, job_id) not in ("succeeded", "failed"):
        assert time.monotonic() - started < 5, "the other user's booking must finish within 5 s"
        time.sleep(0.05)
    assert job_status(stack, job_id) == "succeeded"
