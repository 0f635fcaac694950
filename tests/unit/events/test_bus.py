"""Specification of the in-memory event bus (the Redis one shares its protocol)."""

from __future__ import annotations

import threading
import time

from app.events.bus import InMemoryEventBus

SHORT = 0.05


def test_publish_reaches_a_subscriber_of_that_channel():
    bus = InMemoryEventBus()
    subscription = bus.subscribe("job:1")
    bus.publish("job:1", "done")
    assert subscription.wait(1.0) == "done"


def test_publish_does_not_reach_subscribers_of_other_channels():
    bus = InMemoryEventBus()
    other = bus.subscribe("job:2")
    bus.publish("job:1", "done")
    assert other.wait(SHORT) is None


def test_every_subscriber_of_a_channel_receives_the_message():
    bus = InMemoryEventBus()
    first, second = bus.subscribe("job:1"), bus.subscribe("job:1")
    bus.publish("job:1", "done")
    assert first.wait(1.0) == "done"
    assert second.wait(1.0) == "done"


def test_messages_arrive_in_publication_order():
    bus = InMemoryEventBus()
    subscription = bus.subscribe("job:1")
    for message in ("queued", "running", "done"):
        bus.publish("job:1", message)
    assert [subscription.wait(1.0) for _ in range(3)] == ["queued", "running", "done"]


def test_messages_published_before_subscribing_are_not_delivered():
    bus = InMemoryEventBus()
    bus.publish("job:1", "early")
    assert bus.subscribe("job:1").wait(SHORT) is None


def test_wait_times_out_with_none():
    subscription = InMemoryEventBus().subscribe("job:1")
    started = time.monotonic()
    assert subscription.wait(SHORT) is None
    assert time.monotonic() - started >= SHORT * 0.9


def test_wait_with_a_non_positive_timeout_returns_none_at_once():
    subscription = InMemoryEventBus().subscribe("job:1")
    assert subscription.wait(-1) is None


def test_wait_wakes_up_when_another_thread_publishes():
    bus = InMemoryEventBus()
    subscription = bus.subscribe("job:1")
    timer = threading.Timer(SHORT, bus.publish, args=("job:1", "done"))
    timer.start()
    try:
        assert subscription.wait(5.0) == "done"
    finally:
        timer.join()


def test_close_stops_delivery():
    bus = InMemoryEventBus()
    subscription = bus.subscribe("job:1")
    subscription.close()
    bus.publish("job:1", "done")
    assert subscription.wait(SHORT) is None


def test_closing_one_subscription_leaves_the_others_subscribed():
    bus = InMemoryEventBus()
    closed, kept = bus.subscribe("job:1"), bus.subscribe("job:1")
    closed.close()
    bus.publish("job:1", "done")
    assert kept.wait(1.0) == "done"
    assert closed.wait(SHORT) is None


def test_closing_twice_is_harmless():
    bus = InMemoryEventBus()
    subscription = bus.subscribe("job:1")
    subscription.close()
    subscription.close()
    bus.publish("job:1", "done")
    assert subscription.wait(SHORT) is None
