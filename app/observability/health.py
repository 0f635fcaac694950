"""Liveness and readiness probes of Postgres, Redis and the broker.

Readiness names each dependency (``ok`` / ``unavailable``) and answers within a few seconds even
when one is down: the database connect and Redis socket timeouts bound each check (app/__init__.py,
app/runtime.py).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy import text

from app.extensions import db
from app.runtime import current_broker_redis, current_redis

log = logging.getLogger(__name__)


def _postgres() -> None:
    """On a pooled connection of its own, not the request's session: a probe is no use case, and a
    dead connection it finds is invalidated by the pool without touching the request's unit of work."""
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis() -> None:
    current_redis().ping()


def _broker() -> None:
    client = current_broker_redis()
    if client is not None:
        client.ping()
        return
    with current_app.extensions["celery"].connection_for_write() as connection:  # a broker that is not Redis
        connection.ensure_connection(max_retries=1, timeout=2)


CHECKS = {"postgres": _postgres, "redis": _redis, "broker": _broker}


def readiness() -> tuple[bool, dict[str, Any]]:
    results: dict[str, Any] = {}
    ready = True
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # report, never raise: this endpoint exists to say what is down
            log.warning("readiness check failed", extra={"dependency": name, "error": type(exc).__name__})
            results[name] = "unavailable"
            ready = False
    return ready, results
