"""Micro-measurement: what ``app/jobs/redis_transport.py`` saves on every publish.

Publishes the same small task message through Celery, once with kombu's own Redis transport and
once with ours (a ``redis.Redis`` client shared per connection pool instead of one built for each
message), alternating rounds so both see the same machine. Reports the median microseconds per
``send_task`` and how many clients each built. Only publishing is measured: nothing consumes.

    .venv/bin/python -m bench.transport                  # embedded Redis on a free loopback port
    .venv/bin/python -m bench.transport --redis-url redis://127.0.0.1:6379/15 --messages 5000

The queue it fills (``bench-transport``) is deleted afterwards. Figures are for comparison within
one run; the comment in ``app/jobs/redis_transport.py`` quotes one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import redis
from celery import Celery
from kombu.transport import redis as kombu_redis

from app.jobs.broker import delivery_settings
from devstack.net import free_port
from devstack.redis import EmbeddedRedis

QUEUE = "bench-transport"
TRANSPORTS = {"kombu": "redis", "shared-client": "app.jobs.redis_transport:Transport"}


@contextmanager
def embedded_redis() -> Iterator[str]:
    """devstack's embedded Redis on a free loopback port, without persistence, for this run only."""
    with tempfile.TemporaryDirectory() as workdir:
        server = EmbeddedRedis(Path(workdir), free_port())
        try:
            yield server.start()
        finally:
            server.stop()


def celery_for(url: str, transport: str) -> Celery:
    celery = Celery("bench-transport")
    celery.conf.update(**{**delivery_settings(url, 3600), "broker_transport": transport}, task_default_queue=QUEUE)
    return celery


def publish_round(celery: Celery, messages: int) -> float:
    """Microseconds per ``send_task`` over ``messages`` publishes."""
    started = time.perf_counter()
    for _ in range(messages):
        celery.send_task("bench.noop", args=[str(uuid.uuid4())])
    return (time.perf_counter() - started) / messages * 1e6


def measure(url: str, messages: int, rounds: int) -> dict[str, dict[str, float]]:
    apps = {name: celery_for(url, transport) for name, transport in TRANSPORTS.items()}
    timings: dict[str, list[float]] = {name: [] for name in apps}
    built = dict.fromkeys(apps, 0)
    measuring = {"name": ""}
    original = kombu_redis.Channel._create_client

    def counting(self: kombu_redis.Channel, *args: object, **kwargs: object) -> object:
        if measuring["name"]:
            built[measuring["name"]] += 1
        return original(self, *args, **kwargs)

    with mock.patch.object(kombu_redis.Channel, "_create_client", counting):
        for celery in apps.values():
            publish_round(celery, 200)  # warm-up: connections, queue declaration, imports
        for _ in range(rounds):
            for name, celery in apps.items():
                measuring["name"] = name
                timings[name].append(publish_round(celery, messages))
                measuring["name"] = ""
    redis.Redis.from_url(url).delete(QUEUE)
    return {
        name: {"median_us": statistics.median(values), "clients_built": built[name] / (messages * rounds)}
        for name, values in timings.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", help="a Redis of your own (default: an embedded one)")
    parser.add_argument("--messages", type=int, default=3000, help="publishes per round (default 3000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per transport, alternating (default 5)")
    args = parser.parse_args(argv)
    if args.redis_url:
        figures = measure(args.redis_url, args.messages, args.rounds)
    else:
        with embedded_redis() as url:
            figures = measure(url, args.messages, args.rounds)
    for name, figure in figures.items():
        per_message = figure["clients_built"]
        print(f"{name:14} {figure['median_us']:8.1f} us per send_task, {per_message:.3f} clients built per message")
    kombu, ours = figures["kombu"]["median_us"], figures["shared-client"]["median_us"]
    print(f"saved per publish: {kombu - ours:.1f} us ({(kombu - ours) / kombu:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
