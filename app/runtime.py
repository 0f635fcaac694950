"""Handles bound once in ``create_app``: the settings and the Redis clients.

Accessors read them from the current app, so code in requests, tasks and CLI commands all
reaches the same objects without importing the application module.

Every Redis client built for request paths uses ``redis_options``: a request must never wait on a
dead or stalled Redis for longer than a few seconds (issue 10: an outage is a prompt 503). redis-py
8 retries a failed command ten times with backoff by default (about 4 s against a refused
connection, tens of seconds against a stalled one); one immediate retry is kept, because after a
Redis restart every pooled connection is dead and the retry is what reconnects.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.settings import Settings

SETTINGS_KEY = "estacionate.settings"
REDIS_KEY = "estacionate.redis"
BROKER_REDIS_KEY = "estacionate.broker_redis"

#: Seconds to open a connection and to wait for any one reply.
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_SOCKET_TIMEOUT = 2.0


def redis_options() -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis.from_url`` that bound every wait (see the module doc)."""
    return {
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
    }


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions[SETTINGS_KEY] = settings
    client = redis.Redis.from_url(settings.redis_url, **redis_options())
    app.extensions[REDIS_KEY] = client
    same = settings.broker_url == settings.redis_url
    app.extensions[BROKER_REDIS_KEY] = client if same else _broker_client(settings.broker_url)


def _broker_client(url: str) -> redis.Redis | None:
    """A client for a separate Redis broker (for queue depth and readiness); None if it is not Redis."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return redis.Redis.from_url(url, **redis_options())


def current_settings() -> Settings:
    return current_app.extensions[SETTINGS_KEY]


def current_redis() -> redis.Redis:
    return current_app.extensions[REDIS_KEY]


def current_broker_redis() -> redis.Redis | None:
    """The broker's Redis (the same client as ``current_redis`` when they share a URL)."""
    return current_app.extensions[BROKER_REDIS_KEY]
