"""Liveness and readiness probes of Postgres, Redis and the broker."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import text

from app.extensions import db
from app.runtime import current_redis, current_settings


def _postgres() -> None:
    db.session.execute(text("SELECT 1"))
    db.session.rollback()


def _redis() -> None:
    current_redis().ping()


def _broker() -> None:
    settings = current_settings()
    if settings.broker_url == settings.redis_url:
        current_redis().ping()
        return
    client = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


CHECKS = {"postgres": _postgres, "redis": _redis, "broker": _broker}


def readiness() -> tuple[bool, dict[str, Any]]:
    results: dict[str, Any] = {}
    ready = True
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception:  # report, never raise: this endpoint exists to say what is down
            db.session.rollback()
            results[name] = "unavailable"
            ready = False
    return ready, results
