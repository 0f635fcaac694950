"""Our kombu Redis transport (``app/jobs/redis_transport.py``) against a real Redis.

A worker that loses its broker while it holds unacknowledged messages closes its channel, and
kombu then tries to put those messages back (``QoS.restore_unacked``). By then kombu has already
dropped the channel's connection pool and detached the transport from its connection, so building
a client raised ``AttributeError: 'NoneType' object has no attribute 'hostname'``. That is no
connection error, so Celery's ``ignore_errors`` let it through and the worker died with
"Unrecoverable error" (seen in the fault suite's redis-restart-empty run: the bulk worker exited
and the pings queued for it waited until something restarted it). The messages could not be put
back anyway (the broker is gone); the outbox relay re-publishes every unfinished job from
PostgreSQL. So the channel must fail the restore with a connection error, which kombu ignores, and
the worker reconnects.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors

from app.jobs.redis_transport import Transport

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/15"


@pytest.fixture
def connection():
    conn = Connection(REDIS_URL, transport=Transport)
    yield conn
    redis.Redis.from_url(REDIS_URL).flushdb()


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
    client = redis.Redis.from_url(REDIS_URL)
    assert client.llen(name) == 1
