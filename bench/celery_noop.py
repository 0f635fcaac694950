"""The queue baseline: raw Celery no-op round trips on the stack's broker (no Flask, no HTTP, no DB).

Worker side: ``BenchStack.start_noop_worker`` runs the Procfile's worker command line with only
``-A`` swapped for ``bench.celery_noop:celery``, so the baseline has the production worker's
topology and flags (one worker, prefork ``--concurrency 2``). The app below copies the settings
of ``app/jobs/broker.py`` that shape delivery (acks_late, prefetch multiplier 1, JSON only, no
results, no events, same transport options) and uses a queue of its own, ``bench.noop``.

Client side: a round trip is ``send_task`` followed by waiting for the task's reply, which the task
RPUSHes to a list of the sending thread that the client BLPOPs. That is what a result backend
does (one write by the worker, one blocking read by the client), without Celery's result
consumer, which is not safe to share between threads.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery

from app.jobs.broker import delivery_settings
from bench.client import Measurement, OperationError, closed_loop
from bench.cpu import CpuSampler

if TYPE_CHECKING:
    from bench.stack import BenchStack

QUEUE = "bench.noop"
TASK = "bench.noop"
REPLY_TIMEOUT_S = 30

_replies: dict[int, redis.Redis] = {}


def _reply_client(url: str) -> redis.Redis:
    """One Redis client per worker process (created after the fork)."""
    client = _replies.get(os.getpid())
    if client is None:
        client = _replies[os.getpid()] = redis.Redis.from_url(url)
    return client


def create_celery(broker_url: str, *, pool_limit: int | None = None) -> Celery:
    app = Celery("bench_noop")
    # Exactly the application's delivery settings, on a queue of its own.
    app.conf.update({**delivery_settings(broker_url, 2 * 3600), "task_default_queue": QUEUE})
    if pool_limit is not None:
        app.conf.broker_pool_limit = pool_limit

    @app.task(name=TASK)
    def noop(reply_to: str, token: str) -> None:
        _reply_client(broker_url).rpush(reply_to, token)

    return app


#: The worker's app (``celery -A bench.celery_noop:celery worker``): the broker comes from the
#: same variables the application reads. Importing this module connects to nothing.
celery = create_celery(os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or "memory://")


def round_trips(broker_url: str, total: int, concurrency: int) -> Measurement:
    """``total`` no-op round trips from ``concurrency`` client threads; results are the tokens echoed."""
    app = create_celery(broker_url, pool_limit=concurrency + 2)
    client = redis.Redis.from_url(broker_url)
    local = threading.local()
    prefix = f"bench:noop:reply:{uuid.uuid4().hex}"

    def one(index: int) -> Any:
        key = getattr(local, "key", None)
        if key is None:
            key = local.key = f"{prefix}:{threading.get_ident()}"
        token = str(index)
        app.send_task(TASK, args=[key, token])
        reply = client.blpop([key], timeout=REPLY_TIMEOUT_S)
        if reply is None:
            raise OperationError(f"no reply from no-op task #{index} within {REPLY_TIMEOUT_S}s")
        if reply[1].decode() != token:
            raise OperationError(f"no-op task #{index} got the reply {reply[1]!r}")
        return token

    try:
        return closed_loop(total, concurrency, one)
    finally:
        client.close()
        app.close()


def measure(stack: BenchStack, total: int, concurrency: int, warmup: int) -> tuple[Measurement, dict[str, float]]:
    """The raw queue baseline as the ``queue`` scenario measures it: a no-op worker started for the
    phase (and stopped after it), a warm-up, then ``total`` round trips; with the CPU it used."""
    with stack.running("noop_worker"):
        round_trips(stack.redis_url, warmup, concurrency)
        sampler = CpuSampler(stack.process_groups())
        measured = round_trips(stack.redis_url, total, concurrency)
        return measured, sampler.cores()
