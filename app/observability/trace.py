"""The current trace id, carried in a context variable across a request or a task.

It comes from W3C ``traceparent`` (its trace-id part), else from ``X-Request-ID``, else it is
generated; it is echoed back as ``X-Request-ID``, stored on jobs and passed to Celery in message
headers, so one booking's API and worker log lines share it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_current: ContextVar[str | None] = ContextVar("trace_id", default=None)


def new_trace_id() -> str:
    return uuid.uuid4().hex


def from_headers(headers: Mapping[str, str]) -> str:
    """Trace id for an incoming request; anything malformed is ignored rather than trusted."""
    match = _TRACEPARENT.match((headers.get("traceparent") or "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    request_id = (headers.get("X-Request-ID") or "").strip()
    if _REQUEST_ID.match(request_id):
        return request_id
    return new_trace_id()


def current() -> str | None:
    return _current.get()


def set_current(trace_id: str | None) -> object:
    return _current.set(trace_id)


def reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
