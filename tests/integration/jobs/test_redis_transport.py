"""Pins ``app/jobs/redis_transport.py``: the one private kombu method it overrides, and what it buys.

If kombu renames ``Channel.conn_or_acquire`` or stops building a client per message, a test here
fails, and the override should then be changed or removed (``python -m bench.transport`` measures it).
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Iterator
from unittest import mock

import pytest
import redis
from celery import Celery
from kombu.transport import redis as kombu_redis

from app.jobs import redis_transport
from app.jobs.broker import delivery_settings

MESSAGES = 25


@pytest.fixture
def queue() -> str:
    return f"test-transport-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def celery_for(stack, queue) -> Iterator:
    made: list[Celery] = []

    def make(transport: str) -> Celery:
        celery = Celery("test-transport")
        settings = {**delivery_settings(stack.settings.broker_url, 3600), "broker_transport": transport}
        celery.conf.update(**settings, task_default_queue=queue)
        made.append(celery)
        return celery

    yield make
    for celery in made:
        celery.close()
    redis.Redis.from_url(stack.settings.broker_url).delete(queue)


def clients_built_while_publishing(celery: Celery, messages: int) -> int:
    celery.send_task("test.transport", args=["warm-up"])  # connection, pool, first client
    with mock.patch.object(
        kombu_redis.Channel, "_create_client", autospec=True, side_effect=kombu_redis.Channel._create_client
    ) as create:
        for n in range(messages):
            celery.send_task("test.transport", args=[n])
    return create.call_count


def test_the_overridden_kombu_method_is_still_there_with_the_same_signature():
    original = kombu_redis.Channel.conn_or_acquire
    assert list(inspect.signature(original).parameters) == ["self", "client"]
    assert list(inspect.signature(redis_transport.Channel.conn_or_acquire).parameters) == ["self", "client"]
    assert redis_transport.Transport.Channel is redis_transport.Channel


def test_kombus_own_transport_still_builds_a_client_for_every_message(celery_for):
    # The cost the override removes; once kombu stops paying it, the override can go.
    assert clients_built_while_publishing(celery_for("redis"), MESSAGES) >= MESSAGES


def test_our_transport_builds_no_client_per_message_and_every_message_arrives(stack, celery_for, queue):
    celery = celery_for("app.jobs.redis_transport:Transport")
    assert clients_built_while_publishing(celery, MESSAGES) == 0
    raw = redis.Redis.from_url(stack.settings.broker_url).lrange(queue, 0, -1)
    assert len(raw) == MESSAGES + 1
    bodies = [json.loads(message) for message in raw]
    assert {body["headers"]["task"] for body in bodies} == {"test.transport"}


def test_a_replaced_pool_gets_a_client_of_its_own_and_an_explicit_client_is_used_as_given(celery_for):
    celery = celery_for("app.jobs.redis_transport:Transport")
    with celery.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, redis_transport.Channel)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as again:
            assert first is again
            assert first.connection_pool is channel.pool
        channel._pool = None  # kombu replaces its pool this way (e.g. after a connection error)
        with channel.conn_or_acquire() as rebuilt:
            assert rebuilt is not first
            assert rebuilt.connection_pool is channel.pool
        given = object()
        with channel.conn_or_acquire(given) as used:
            assert used is given
