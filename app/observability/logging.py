"""JSON-lines logging for the API, the workers and beat.

Every line carries ``service`` and ``trace_id``. A redaction filter scrubs e-mail addresses,
bearer tokens/JWTs, webhook secrets and anything under a sensitive key before a line is written:
personal data and credentials must never reach log storage, even from a careless call site.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from app.observability import trace

REDACTED = "[redacted]"

_PATTERNS = [
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),  # e-mail addresses
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),
]
# Matched against whole ``_``-separated segments of an ``extra=`` key, so ``status_code`` is kept.
_SENSITIVE_KEY = re.compile(
    r"(?i)(^|_)(password|passwd|secret|token|authorization|cookie|apikey|email|otp|rut|phone|plate|"
    r"recovery_code|mfa_code|api_key)($|_)"
)

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact_text(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    if _SENSITIVE_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(key, v) for v in value]
    return value


class RedactionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and key not in {"service", "trace_id"}:
                record.__dict__[key] = redact_value(key, value)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        if not getattr(record, "trace_id", None):
            record.trace_id = trace.current()
        return True


def build_handler(service: str, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(trace_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    handler.addFilter(ContextFilter(service))
    handler.addFilter(RedactionFilter())
    return handler


def configure(service: str, level: str = "INFO", stream: Any = None) -> None:
    """Route every logger (ours, Flask's, Celery's, gunicorn's) through one JSON handler."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(build_handler(service, stream))
    root.setLevel(level)
    for noisy in ("werkzeug", "urllib3", "kombu", "amqp", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
