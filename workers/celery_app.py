"""Worker and beat entry point: ``celery -A workers.celery_app worker`` / ``... beat``.

It builds the Flask app (tasks run inside its context), configures JSON logging for the
process, and carries the trace id from message headers into every log line of a task.
"""

from __future__ import annotations

import sys
from typing import Any

from celery import signals

from app import create_app
from app.observability import logging as app_logging
from app.observability import trace
from config.settings import Settings

SERVICE = "beat" if "beat" in sys.argv else "worker"

settings = Settings.from_env()
app_logging.configure(SERVICE, settings.log_level)
flask_app = create_app(settings)
celery = flask_app.extensions["celery"]
celery.conf.include = [
    "workers.tasks.system",
    "workers.tasks.jobs",
    "workers.tasks.webhooks",
    "workers.tasks.keys",
    "workers.tasks.availability",
    "workers.tasks.bookings",
    "workers.tasks.pricing",
    "workers.tasks.events",
    "workers.tasks.gdpr",
    "workers.tasks.notifications",
]


@signals.setup_logging.connect
def _keep_our_logging(**_: Any) -> None:
    """Connecting here stops Celery from replacing the JSON handlers configured above."""


@signals.task_prerun.connect
def _enter_trace(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    trace_id = getattr(request, "trace_id", None) or ((getattr(request, "headers", None) or {}).get("trace_id"))
    task._trace_token = trace.set_current(trace_id or trace.new_trace_id())


@signals.task_postrun.connect
def _leave_trace(task: Any = None, **_: Any) -> None:
    token = getattr(task, "_trace_token", None)
    if token is not None:
        trace.reset(token)
        task._trace_token = None
