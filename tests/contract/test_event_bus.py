"""The event-bus contract (DESIGN.md "Events"), passed by both implementations of ``EVENT_BUS``.

- ``inprocess``: durable subscribers run synchronously after the commit (the test process);
- ``celery``: a real Celery worker (its own process, ``tests/support/event_worker.py``) runs them.

Each contract subscriber's effect is an audit row per event (tests/support/event_subscribers.py),
written with the receipt in one unit of work. Negative claims ("nothing was delivered") are
asserted only after a later, committed event's effect was seen: the worker takes messages in
order (one child, prefetch 1), so by then any earlier delivery would have happened.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from app.events import dispatch, record
from app.events.subscribers import Registry
from app.unit_of_work import current_unit_of_work, unit_of_work
from tests.support import event_subscribers
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


class Boom(Exception):
    pass


@pytest.fixture(params=["inprocess", "celery"])
def bus_stack(request, isolated_stack_factory):
    stack = isolated_stack_factory(EVENT_BUS=request.param)
    bus = stack.app.extensions[dispatch.EXTENSION_KEY]
    # The test process's bus knows only the contract subscribers (whatever else is registered).
    bus.registry = event_subscribers.register(Registry())
    if request.param == "celery":
        stack.start_worker(concurrency=1, app="tests.support.event_worker:celery")
    stack.kind = request.param
    return stack


def banned(user_id: uuid.UUID | None = None):
    user_id = user_id or uuid.uuid4()
    return record(
        "user.banned",
        organization_id=None,
        building_id=None,
        aggregate=("user", user_id),
        data={"user_id": str(user_id)},
    )


def unbanned(user_id: uuid.UUID | None = None):
    user_id = user_id or uuid.uuid4()
    return record(
        "user.unbanned",
        organization_id=None,
        building_id=None,
        aggregate=("user", user_id),
        data={"user_id": str(user_id)},
    )


def cancelled(booking_id: uuid.UUID | None = None):
    booking_id = booking_id or uuid.uuid4()
    data = {
        "booking_id": str(booking_id),
        "availability_block_id": str(uuid.uuid4()),
        "spot_number": "V-1",
        "start": "2026-12-02T10:00:00Z",
        "end": "2026-12-02T12:00:00Z",
        "status": "cancelled",
        "price_clp": 2000,
        "commission_clp": 300,
        "resident_id": str(uuid.uuid4()),
    }
    return record(
        "booking.cancelled",
        organization_id=uuid.uuid4(),
        building_id=None,
        aggregate=("booking", booking_id),
        data=data,
    )


def effects(stack, subscriber: str, event_id) -> int:
    return stack.sql(
        "SELECT count(*) FROM audit_logs WHERE action = %s AND entity_type = %s AND entity_id = %s",
        (event_subscribers.EFFECT, subscriber, str(event_id)),
    )[0][0]


def receipts(stack, subscriber: str, event_id) -> int:
    return stack.sql(
        "SELECT count(*) FROM event_receipts WHERE subscriber = %s AND event_id = %s", (subscriber, str(event_id))
    )[0][0]


def emit(stack, make):
    with stack.context(), unit_of_work():
        event = make()
        event_id = event.id
    return event_id


def delivered(stack, subscriber, event_id, timeout=30):
    wait_until(lambda: effects(stack, subscriber, event_id) >= 1, timeout, message=f"{subscriber} never saw {event_id}")


def test_delivery_happens_after_commit_only(bus_stack):
    stack = bus_stack
    seen_before_commit = {}
    with stack.context(), unit_of_work() as uow:
        event = banned()
        event_id = event.id
        uow.session.flush()
        # Flushed but not committed: nothing is handed over yet, whatever the bus.
        seen_before_commit["rows"] = stack.sql("SELECT count(*) FROM events WHERE id = %s", (str(event_id),))[0][0]
        seen_before_commit["effects"] = effects(stack, "contract-all", event_id)
    assert seen_before_commit == {"rows": 0, "effects": 0}
    delivered(stack, "contract-all", event_id)
    assert receipts(stack, "contract-all", event_id) == 1
    published = stack.sql("SELECT published_at IS NOT NULL FROM events WHERE id = %s", (str(event_id),))
    assert published == [(True,)]


def test_a_rolled_back_change_has_no_event_and_no_delivery(bus_stack):
    stack = bus_stack
    rolled_back = {}
    with stack.context(), pytest.raises(Boom), unit_of_work():
        rolled_back["id"] = banned().id
        current_unit_of_work().session.flush()
        raise Boom
    later = emit(stack, banned)
    delivered(stack, "contract-all", later)  # the marker: a later event went all the way through
    assert stack.sql("SELECT count(*) FROM events WHERE id = %s", (str(rolled_back["id"]),)) == [(0,)]
    assert effects(stack, "contract-all", rolled_back["id"]) == 0
    assert receipts(stack, "contract-all", rolled_back["id"]) == 0


def test_a_duplicated_delivery_has_its_effect_once(bus_stack):
    stack = bus_stack
    event_id = emit(stack, banned)
    delivered(stack, "contract-all", event_id)
    with stack.context():
        if stack.kind == "celery":
            celery = stack.app.extensions["celery"]
            assert dispatch.send(celery, "contract-all", event_id)
            assert dispatch.send(celery, "contract-all", event_id)
        else:
            registry = stack.app.extensions[dispatch.EXTENSION_KEY].registry
            assert dispatch.deliver("contract-all", event_id, registry) is False
        # The relay finds nothing to hand over again either: the event is published.
        from app.events import relay

        assert relay.hand_over_unpublished() == 0
    marker = emit(stack, banned)
    delivered(stack, "contract-all", marker)
    assert effects(stack, "contract-all", event_id) == 1
    assert receipts(stack, "contract-all", event_id) == 1


def test_each_subscriber_gets_only_the_types_it_subscribed_to(bus_stack):
    stack = bus_stack
    booking_event = emit(stack, cancelled)
    user_event = emit(stack, banned)
    delivered(stack, "contract-bookings", booking_event)
    delivered(stack, "contract-all", booking_event)
    delivered(stack, "contract-all", user_event)  # after the booking event: the marker
    assert effects(stack, "contract-bookings", user_event) == 0
    assert receipts(stack, "contract-bookings", user_event) == 0
    assert effects(stack, "contract-bookings", booking_event) == effects(stack, "contract-all", booking_event) == 1


def test_an_unpublished_event_is_handed_over_by_the_relay(bus_stack):
    """A crash between commit and hand-over: the row stays unpublished until the relay runs."""
    stack = bus_stack
    with stack.context(), unit_of_work() as uow:
        event_id = banned().id
        uow.__dict__.pop("_estacionate_pending_events", None)
        uow._after_commit.clear()  # the process "died" right after its commit
    assert stack.sql("SELECT published_at FROM events WHERE id = %s", (str(event_id),)) == [(None,)]
    stack.sql("UPDATE events SET occurred_at = now() - interval '1 minute' WHERE id = %s", (str(event_id),))
    with stack.context():
        from app.events import relay

        assert relay.hand_over_unpublished() == 1
    delivered(stack, "contract-all", event_id)
    assert effects(stack, "contract-all", event_id) == 1


def test_a_subscriber_that_fails_holds_up_no_other_and_is_delivered_again_alone(bus_stack):
    """``contract-flaky`` fails its first delivery: ``contract-all`` gets the event regardless, and the
    flaky one gets it again on its own (Celery: its own ``events.deliver`` a second later; in-process:
    the relay's sweep), with its effect exactly once."""
    stack = bus_stack
    event_id = emit(stack, unbanned)
    delivered(stack, "contract-all", event_id)
    if stack.kind == "inprocess":
        assert receipts(stack, event_subscribers.FLAKY, event_id) == 0  # its failure rolled its receipt back
        stack.sql("UPDATE events SET published_at = now() - interval '1 minute' WHERE id = %s", (str(event_id),))
        with stack.context():
            from app.events import relay

            assert relay.resend_unreceipted() == 1
    delivered(stack, event_subscribers.FLAKY, event_id)
    assert stack.redis.get(f"contract-flaky:{event_id}") == b"2"
    assert effects(stack, event_subscribers.FLAKY, event_id) == receipts(stack, event_subscribers.FLAKY, event_id) == 1
    assert effects(stack, "contract-all", event_id) == receipts(stack, "contract-all", event_id) == 1


def test_the_celery_bus_hands_an_event_over_in_one_message_naming_its_subscribers(isolated_stack_factory):
    """One ``events.fan_out`` per event, not one message per subscriber: ids and names only (no data)."""
    stack = isolated_stack_factory(EVENT_BUS="celery")  # no worker: the messages stay in the queue
    bus = stack.app.extensions[dispatch.EXTENSION_KEY]
    bus.registry = event_subscribers.register(Registry())
    booking_event = emit(stack, cancelled)  # wanted by contract-bookings and contract-all
    user_event = emit(stack, banned)  # wanted by contract-all only
    messages = [json.loads(raw) for raw in reversed(stack.redis.lrange("system", 0, -1))]
    sent = [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]
    assert sent == [
        (dispatch.FAN_OUT_TASK, [str(booking_event), ["contract-bookings", "contract-all"]]),
        (dispatch.FAN_OUT_TASK, [str(user_event), ["contract-all"]]),
    ]


def test_the_events_a_job_commits_reach_their_subscribers_in_the_jobs_own_task(isolated_stack_factory):
    """No ``events.fan_out`` message for a job's events: the runner delivers them after the report,
    in the same task (here the test process plays the worker, and no worker runs at all); a
    subscriber failing there is sent its own ``events.deliver``."""
    from app.jobs import runner, submit
    from app.models.audit import Actor

    stack = isolated_stack_factory(EVENT_BUS="celery")
    bus = stack.app.extensions[dispatch.EXTENSION_KEY]
    bus.registry = event_subscribers.register(Registry())
    with stack.context(), unit_of_work():
        job_id = submit("system.ping", {}, Actor.system())["job_id"]
    emitted = {}

    def handler(run):
        emitted["banned"], emitted["unbanned"] = banned().id, unbanned().id
        return {"pong": True}

    with stack.context():
        runner.execute(job_id, "system.ping", handler)
    # Delivered by the time execute returned: contract-all both, contract-flaky failed once.
    assert stack.sql("SELECT status FROM jobs WHERE id = %s", (job_id,)) == [("succeeded",)]
    assert effects(stack, "contract-all", emitted["banned"]) == receipts(stack, "contract-all", emitted["banned"]) == 1
    assert effects(stack, "contract-all", emitted["unbanned"]) == 1
    assert receipts(stack, event_subscribers.FLAKY, emitted["unbanned"]) == 0
    queued = []
    for queue in ("system", "interactive", "bulk"):
        for raw in stack.redis.lrange(queue, 0, -1):
            message = json.loads(raw)
            queued.append((message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0]))
    assert [m for m in queued if m[0] == dispatch.FAN_OUT_TASK] == []
    assert [m for m in queued if m[0] == dispatch.DELIVER_TASK] == [
        (dispatch.DELIVER_TASK, [event_subscribers.FLAKY, str(emitted["unbanned"])])
    ]
