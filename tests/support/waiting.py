"""Waiting on a real condition instead of sleeping a fixed time.

``wait_until(predicate)`` polls until the predicate returns something truthy and returns it, or
fails the test with the message (and the last value seen) once ``timeout`` has passed. A test
that must show that something did *not* happen waits for a positive marker that proves the
moment has passed (a later job finished, a heartbeat observed, a key expired) and then asserts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 20.0,
    *,
    interval: float = 0.05,
    message: str | Callable[[], str] = "the condition never held",
) -> T:
    """The first truthy value of ``predicate()``, polled every ``interval`` seconds up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} (waited {timeout:g} s; last value {value!r})")
        time.sleep(interval)


def broker_holds(broker: Any, task_id: str) -> bool:
    """Whether the Redis broker still has Celery message ``task_id``: queued, or taken but not yet
    acknowledged (tasks ack late, so a message leaves kombu's ``unacked`` hash only once its task
    has finished)."""
    needle = task_id.encode()
    if any(needle in value for value in broker.hvals("unacked")):
        return True
    for key in broker.scan_iter():
        if broker.type(key) == b"list" and any(needle in message for message in broker.lrange(key, 0, -1)):
            return True
    return False


def wait_until_handled(broker: Any, task_id: str, timeout: float = 20.0) -> None:
    """The positive marker that a worker took message ``task_id`` and finished its task."""
    wait_until(lambda: not broker_holds(broker, task_id), timeout, message=f"message {task_id} was never handled")
