"""Issue 12 acceptance: the event bus across real processes on one Postgres and one Redis.

Two API processes (gunicorn) and two Celery workers with distinct node names, plus beat (the
relay). The durable subscribers are the contract ones (tests/support/event_subscribers.py: an
audit row per event, written with the receipt), registered in every process of these stacks.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from app.events import dispatch, record
from app.events.subscribers import Registry
from app.unit_of_work import unit_of_work
from tests.support import event_subscribers
from tests.support.bookings import bookable_building, booking_body
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WORKER_APP = "tests.support.event_worker:celery"
WSGI = "tests.support.event_wsgi:app"


def counts(stack, subscriber):
    """(receipts, effects, events with more than one effect) of one subscriber."""
    receipts = stack.sql("SELECT count(*) FROM event_receipts WHERE subscriber = %s", (subscriber,))[0][0]
    effects, duplicated = stack.sql(
        "SELECT coalesce(sum(n), 0), count(*) FILTER (WHERE n > 1) FROM ("
        " SELECT count(*) AS n FROM audit_logs WHERE action = %s AND entity_type = %s GROUP BY entity_id) per_event",
        (event_subscribers.EFFECT, subscriber),
    )[0]
    return receipts, int(effects), duplicated


def commit_events(stack, n):
    """``n`` events in batches of 100 (half booking.cancelled, half user.banned), handed to the bus."""
    bus = stack.app.extensions[dispatch.EXTENSION_KEY]
    bus.registry = event_subscribers.register(Registry())
    with stack.context():
        for start in range(0, n, 100):
            with unit_of_work():
                for i in range(start, min(start + 100, n)):
                    subject = uuid.uuid4()
                    if i % 2:
                        record(
                            "user.banned",
                            organization_id=None,
                            building_id=None,
                            aggregate=("user", subject),
                            data={"user_id": str(subject)},
                        )
                    else:
                        record(
                            "booking.cancelled",
                            organization_id=uuid.uuid4(),
                            building_id=None,
                            aggregate=("booking", subject),
                            data={
                                "booking_id": str(subject),
                                "availability_block_id": str(uuid.uuid4()),
                                "spot_number": "V1",
                                "start": "2026-12-02T10:00:00Z",
                                "end": "2026-12-02T12:00:00Z",
                                "status": "cancelled",
                                "price_clp": 1000,
                                "commission_clp": 100,
                                "resident_id": str(uuid.uuid4()),
                            },
                        )


def all_processed_once(stack, n):
    def done():
        return counts(stack, "contract-all")[0] >= n and counts(stack, "contract-bookings")[0] >= n // 2

    wait_until(done, 240, interval=0.5, message=lambda: f"processed so far: {counts(stack, 'contract-all')}")
    assert counts(stack, "contract-all") == (n, n, 0)
    assert counts(stack, "contract-bookings") == (n // 2, n // 2, 0)


def test_a_booking_accepted_by_one_api_is_handled_by_a_worker_and_seen_live_by_the_other(isolated_stack):
    stack = isolated_stack
    stack.start_worker(label="alpha", app=WORKER_APP)
    stack.start_worker(label="beta", app=WORKER_APP)
    api_a = stack.start_api(WSGI)
    api_b = stack.start_api(WSGI)
    headers, (block,) = bookable_building(stack, 1)
    organization_id = stack.sql(
        "SELECT organization_id::text FROM availability_blocks b JOIN buildings g "
        "ON g.id = b.building_id WHERE b.id = %s",
        (block,),
    )[0][0]
    # A live listener, as API B's process listens: pattern-subscribed to the bus's event channels.
    live = stack.redis.pubsub(ignore_subscribe_messages=True)
    live.psubscribe("event:*")
    assert requests.get(api_b + "/healthz", timeout=5).status_code == 200

    accepted = requests.post(
        api_a + "/v1/bookings", json=booking_body(block), headers={**headers, "Idempotency-Key": "acc-1"}, timeout=10
    )
    assert accepted.status_code == 202, accepted.text
    job = requests.get(f"{api_b}/v1/jobs/{accepted.json()['job_id']}?wait=20", headers=headers, timeout=30).json()
    assert job["status"] == "succeeded", job
    booking_id = job["result"]["booking"]["id"]
    (event_id,) = [r[0] for r in stack.sql("SELECT id::text FROM events WHERE aggregate_id = %s", (booking_id,))]

    wait_until(
        lambda: stack.sql(
            "SELECT 1 FROM event_receipts WHERE subscriber = 'contract-all' AND event_id = %s", (event_id,)
        ),
        30,
        message="no worker processed the booking's event",
    )
    # One receipt of the contract subscriber that wants booking.confirmed (the app's own subscribers,
    # such as notifications, add theirs).
    contract = "SELECT count(*) FROM event_receipts WHERE event_id = %s AND subscriber LIKE 'contract-%%'"
    assert stack.sql(contract, (event_id,)) == [(1,)]

    def received():
        message = live.get_message(timeout=0.5)
        if message and message["type"] == "pmessage":
            document = json.loads(message["data"])
            if document["id"] == event_id:
                return message["channel"].decode(), document
        return None

    channel, document = wait_until(received, 30, interval=0, message="the live listener never got the event")
    live.close()
    assert channel == f"event:{organization_id}"
    assert document["type"] == "booking.confirmed" and document["data"]["booking_id"] == booking_id
    assert set(document) == {"id", "type", "occurred_at", "organization_id", "building_id", "data"}


def test_a_redis_flush_between_commit_and_delivery_loses_nothing_and_doubles_nothing(isolated_stack):
    stack = isolated_stack
    commit_events(stack, 1000)  # no worker runs: every delivery message waits in Redis
    assert stack.sql("SELECT count(*) FROM events WHERE published_at IS NULL") == [(0,)]
    stack.redis.flushdb()  # FLUSHALL of this stack's Redis database (the others belong to other tests)
    stack.start_worker(label="alpha", app=WORKER_APP)
    stack.start_worker(label="beta", app=WORKER_APP)
    stack.start_beat()  # the relay resends what has no receipt
    all_processed_once(stack, 1000)


def test_a_worker_killed_mid_batch_still_gives_exactly_once(isolated_stack):
    stack = isolated_stack
    victim = stack.start_worker(label="victim", app=WORKER_APP)
    stack.start_beat()
    commit_events(stack, 1000)
    wait_until(lambda: counts(stack, "contract-all")[0] >= 50, 60, message="the victim processed nothing")
    victim.kill()  # SIGKILL mid-batch: its taken messages are never acknowledged
    assert counts(stack, "contract-all")[0] < 1000, "killed mid-batch, not after it"
    stack.start_worker(label="survivor", app=WORKER_APP)
    all_processed_once(stack, 1000)
