"""Pins ``app/jobs/redis_transport.py``: the one private kombu method it overrides, and what it buys.

If kombu renames ``Channel.conn_or_acquire`` or stops building a client per message, a test here
fails, and the override should then be changed or removed (``python -m bench.transport`` measures it).

It also pins the one fix it carries beyond kombu. A worker that loses its broker while it holds
unacknowledged messages closes its channel, and kombu then tries to put those messages back
(``QoS.restore_unacked``). By then kombu has already dropped the channel's connection pool and
detached the transport from its connection, so building a client raised ``AttributeError: 'NoneType'
object has no attribute 'hostname'``. That is no connection error, so Celery's ``ignore_errors`` let
it through and the worker died with "Unrecoverable error" (seen in the fault suite's redis-restart-
empty run: the bulk worker exited and the pings queued for it waited until something restarted it).
The messages could not be put back anyway (the broker is gone); the outbox relay re-publishes every
unfinished job from PostgreSQL. So the channel must fail the restore with a connection error, which
kombu ignores, and the worker reconnects.
"""

from __future__ import annotations

import inspect
import json
import os
import uuid
from collections.abc import Iterator
from unittest import mock

import pytest
import redis
from celery import Celery
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors
from kombu.transport import redis as kombu_redis

from app.jobs import redis_transport
from app.jobs.broker import delivery_settings
from app.jobs.redis_transport import Transport

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


#: A database of its own: these tests hold messages unacknowledged, which a worker of the session
#: stack must never see (kombu's unacked hash is per database).
OWN_REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/15"


@pytest.fixture
def connection():
    conn = Connection(OWN_REDIS_URL, transport=Transport)
    yield conn
    redis.Redis.from_url(OWN_REDIS_URL).flushdb()


def _hold_one_unacked_message(conn: Connection) -> tuple[object, str]:
    name = f"transport-test-{uuid.uuid4().hex}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    channel = conn.default_channel
    queue(channel).declare()
    conn.Producer(channel).publish({"job": "x"}, exchange=queue.exchange, routing_key=name, declare=[queue])
    message = channel.basic_get(name, no_ack=False)
    assert message is not None
    assert channel.qos._delivered, "the message must be held unacknowledged"
    return channel, name


def test_closing_after_the_broker_connection_is_gone_raises_only_a_connection_error(connection):
    channel, _ = _hold_one_unacked_message(connection)
    # The state kombu leaves when the broker connection is lost: pools dropped, transport detached.
    channel._disconnect_pools()
    connection.transport.client = None

    # Celery closes it through ignore_errors(connection, ...): only connection/channel errors are
    # swallowed there, so anything else (the old AttributeError) kills the worker.
    ignore_errors(connection, channel.close)
    assert channel.closed


def test_a_live_channel_keeps_one_client_per_pool_and_restores_unacked_messages(connection):
    channel, name = _hold_one_unacked_message(connection)
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second, "one client per connection pool, not one per publish"
    channel.close()  # restores the unacknowledged message to its queue
    client = redis.Redis.from_url(OWN_REDIS_URL)
    assert client.llen(name) == 1
