"""Handles bound once in ``create_app``: the settings and the Redis client.

Accessors read them from the current app, so code in requests, tasks and CLI commands all
reaches the same objects without importing the application module.
"""

from __future__ import annotations

import redis
from flask import Flask, current_app

from config.settings import Settings

SETTINGS_KEY = "estacionate.settings"
REDIS_KEY = "estacionate.redis"


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[REDIS_KEY] = redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )


def current_settings() -> Settings:
    return current_app.extensions[SETTINGS_KEY]


def current_redis() -> redis.Redis:
    return current_app.extensions[REDIS_KEY]
