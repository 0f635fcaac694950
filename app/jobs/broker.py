"""Celery, bound to the Flask app (Flask's "Background Tasks with Celery" pattern).

Tasks run inside an app context. The API never imports ``workers``: it publishes by task name
through ``publish`` and a message carries only the job id (no personal data in Redis) plus the
trace id in its headers.

Three queues (``app/jobs/types.py``): ``interactive``, ``bulk`` and ``system``. Routing is by task
name, derived from the job types, so the API's publishes and the workers agree without either
naming a queue. A worker started without ``-Q`` consumes all three (tests, ``make bench``);
production runs an interactive+system worker and a separate bulk worker (Procfile).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from flask import Flask, current_app
from kombu import Queue
from kombu.exceptions import ChannelError

from app.jobs.types import QUEUES, SYSTEM, task_routes
from app.observability import trace
from config.settings import Settings

log = logging.getLogger(__name__)

EXTENSION_KEY = "celery"
#: The queue of everything that is not a job type (kept under this name for ``metrics_snapshot``,
#: which reports one queue's depth; ``QUEUES`` lists them all).
QUEUE = SYSTEM

#: A publish that cannot reach the broker quickly gives up: the row is already committed and the
#: outbox relay will publish it later, so the API must not hang on a broker outage.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def delivery_settings(broker_url: str, visibility_timeout: int) -> dict[str, Any]:
    """How messages travel (DESIGN.md "Celery settings"); the benchmark's raw-Celery baseline uses it too."""
    return {
        "broker_url": broker_url,
        # kombu's Redis transport with a shared client per pool (app/jobs/redis_transport.py).
        "broker_transport": "app.jobs.redis_transport:Transport" if broker_url.startswith("redis") else None,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": visibility_timeout,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
        },
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        # A killed worker's job is recovered by the relay (lease expiry), not by redelivery loops.
        "task_reject_on_worker_lost": False,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "task_soft_time_limit": 60,
        "task_time_limit": 90,
        "timezone": "UTC",
        "enable_utc": True,
    }


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        **delivery_settings(settings.broker_url, settings.celery_visibility_timeout_seconds),
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=SYSTEM,
        task_routes=task_routes(),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_schedule={
            "jobs.relay": {
                "task": "jobs.relay",
                "schedule": timedelta(seconds=settings.relay_interval_seconds),
                # No expiry: recovery must never be dropped unexecuted. Relays that piled up behind
                # a busy system worker run back to back; each is one indexed SELECT when idle.
            },
            "events.relay": {
                # The events outbox: unpublished events and deliveries without a receipt (app/events/relay.py).
                "task": "events.relay",
                "schedule": timedelta(seconds=settings.relay_interval_seconds),
            },
            "events.purge": {
                # Nightly, 07:45 UTC: events past EVENT_RETENTION_DAYS (their receipts cascade).
                "task": "events.purge",
                "schedule": crontab(hour=7, minute=45),
                "options": {"expires": 3600},
            },
            "availability.generate_daily": {
                "task": "availability.generate_daily",
                # Daily; 06:00 UTC is the small hours in Chile, the first market.
                "schedule": crontab(hour=6, minute=0),
                "options": {"expires": 3600},
            },
            "pricing.recalculate_nightly": {
                # Hourly: each building is recalculated when it is 03:00 in its own timezone.
                "task": "pricing.recalculate_nightly",
                "schedule": crontab(minute=0),
                "options": {"expires": 1800},
            },
            "bookings.mark_overdue": {
                "task": "bookings.mark_overdue",
                "schedule": timedelta(minutes=1),
                "options": {"expires": 50},
            },
            "jobs.purge_idempotency_keys": {
                "task": "jobs.purge_idempotency_keys",
                "schedule": timedelta(hours=1),
                "options": {"expires": 600},
            },
            "gdpr.retention": {
                # Nightly, 07:15 UTC: personal data past PERSONAL_DATA_RETENTION_MONTHS, exports
                # past EXPORT_RETENTION_DAYS (app/services/retention.py).
                "task": "gdpr.retention",
                "schedule": crontab(hour=7, minute=15),
                "options": {"expires": 3600},
            },
            "jobs.purge_finished": {
                # Nightly, 07:30 UTC (small hours in Chile): jobs and deliveries past their retention.
                "task": "jobs.purge_finished",
                "schedule": crontab(hour=7, minute=30),
                "options": {"expires": 3600},
            },
        },
    )
    celery.set_default()
    app.extensions[EXTENSION_KEY] = celery
    return celery


def queue_depth(queue: str) -> int | None:
    """Messages waiting in a broker queue, or None when the broker cannot tell (it is down)."""
    celery: Celery = current_app.extensions[EXTENSION_KEY]
    try:
        with celery.connection_for_read() as connection:
            return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:  # no such queue: on Redis, an empty queue is a missing key
        return 0
    except Exception:
        log.warning("could not read the depth of a queue", extra={"queue": queue}, exc_info=True)
        return None


def publish(
    task_name: str,
    args: list[Any],
    *,
    trace_id: str | None = None,
    countdown: float | None = None,
    kwargs: dict[str, Any] | None = None,
) -> bool:
    """Send a task by name (routed to its queue); return False (and log) when the broker is unreachable."""
    celery: Celery = current_app.extensions[EXTENSION_KEY]
    try:
        celery.send_task(
            task_name,
            args=args,
            kwargs=kwargs,
            headers={"trace_id": trace_id or trace.current()},
            countdown=countdown,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
            # The arguments are ids and counters: show them as they are instead of paying for a safe repr.
            argsrepr=repr(args),
            kwargsrepr=repr(kwargs or {}),
        )
    except Exception:  # the broker is down: the outbox relay publishes it later
        log.warning("publish failed; the relay will retry", extra={"task": task_name}, exc_info=True)
        return False
    return True
