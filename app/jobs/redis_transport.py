"""kombu's Redis transport, minus one cost on every publish.

kombu's ``Channel.conn_or_acquire`` builds a new ``redis.Redis`` client object (and its table of
response callbacks) for every message it puts. This channel keeps one client per connection pool
(redis-py clients are thread-safe; the pool does the connection handling) and rebuilds it if the
pool is replaced. Everything else is kombu's own transport. Selected with Celery's
``broker_transport`` setting (app/jobs/broker.py).

Kept because it is measured, and pinned because it overrides a private kombu method:
- Gain: ``python -m bench.transport`` (same run, alternating rounds, 3,000 publishes each) gave
  2,115 -> 1,216 us and 2,862 -> 2,160 us per ``send_task`` on the 2-core machine under load
  (25-42 %, 0.7-0.9 ms per publish, i.e. per accepted job); kombu built 1.0 client per message,
  this channel none. An earlier profile of the API put it at 814 -> 296 us together with
  showing ids without ``saferepr`` (bench/README.md).
- Pin: tests/integration/jobs/test_redis_transport.py fails when kombu renames the method or
  changes its signature, when kombu itself stops building a client per message (then this
  module can go), or when a message published here does not arrive.

It also fixes one way a worker died on a broker outage: when the connection is lost while the
worker holds unacknowledged messages, kombu closes the channel and tries to restore them after it
has already dropped the channel's pool and detached the transport from its connection; building a
client then raised ``AttributeError`` (kombu's ``_connparams`` reads ``None.hostname``), which
Celery does not treat as a connection error, so the worker exited ("Unrecoverable error"). Here
that case raises ``redis.ConnectionError``: Celery ignores it and reconnects. Nothing is lost by
not restoring: the broker is gone, and the outbox relay re-publishes every unfinished job from
PostgreSQL. Pinned by the same test module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        if self._pool is None and self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed (unacknowledged messages stay with the relay)")
        shared = self._shared_client
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(kombu_redis.Transport):
    Channel = Channel
