"""Prometheus metrics: request counts and latency, unfinished jobs by type/status, queue depth.

Under gunicorn with several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` (``make run``
does) so counters from every process are merged at scrape time. Job counts and queue depth are
read at scrape time from Postgres and Redis, the sources of truth, rather than counted in
processes that may have died. A scrape costs one query over unfinished jobs only (the partial
index ``ix_jobs_relay``) and one Redis round trip, whatever the size of the jobs table.

Access: ``METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>`` (compared in
constant time; wrong or missing: 401 ``unauthenticated`` with ``WWW-Authenticate``). Without a
token the endpoint is open in development and test, and in production it is not registered at all
(404) and a warning says so at start.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterator

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.observability import timing
from app.problems import Problem
from config.settings import Settings

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs accepted by the API", ["type"])
#: The event outbox (app/events): recorded with their change, handed to the bus, and delivered
#: (a durable subscriber's effect committed; duplicates not counted), with the delivery lag.
EVENTS_RECORDED = Counter("events_recorded_total", "Domain events recorded (committed or not)", ["type"])
EVENTS_PUBLISHED = Counter("events_published_total", "Domain events handed over to the bus", ["via"])
EVENTS_DELIVERED = Counter(
    "events_delivered_total", "Domain events processed by a durable subscriber", ["subscriber", "type"]
)
EVENT_DELIVERY_LAG = Histogram(
    "event_delivery_lag_seconds",
    "From an event's occurrence to a durable subscriber's committed effect",
    ["subscriber"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

#: Operator webhooks (app/jobs/event_webhooks.py): attempts by outcome, failed attempts per
#: endpoint (its id, never its URL, which can hold a token), and occurrence-to-2xx lag.
ENDPOINT_ATTEMPTS = Counter("webhook_endpoint_attempts_total", "Operator webhook attempts by outcome", ["outcome"])
ENDPOINT_FAILURES = Counter(
    "webhook_endpoint_failures_total", "Failed operator webhook attempts per endpoint", ["endpoint_id"]
)
ENDPOINT_DELIVERY_LAG = Histogram(
    "webhook_endpoint_delivery_lag_seconds",
    "From an event's occurrence to its operator webhook's 2xx answer",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)

#: WhatsApp messages (app/services/notifications.py): each outcome of a send attempt by template
#: (``sent``, ``retrying``, ``failed``, ``suppressed``) and each status a callback moved a message
#: to, and how long the provider took to answer (backend: ``twilio`` or ``recording``).
NOTIFICATIONS = Counter("notifications_total", "WhatsApp messages by template and status", ["template", "status"])
NOTIFICATION_PROVIDER_LATENCY = Histogram(
    "notification_provider_latency_seconds",
    "Time the notification provider took to answer one send",
    ["backend", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


#: What a scrape reads of the job pipeline: unfinished jobs by (type, status), and messages
#: waiting per broker queue. Handed in by ``create_app`` (``app.jobs.metrics_snapshot``), so
#: observability, below the job pipeline, never imports it.
JobSnapshot = Callable[[], tuple[dict[tuple[str, str], int], dict[str, int]]]


class JobStateCollector(Collector):
    """Reads job counts and the broker queue length when Prometheus scrapes."""

    def __init__(self, app: Flask, snapshot: JobSnapshot) -> None:
        self.app = app
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "jobs", "Unfinished (queued or running) jobs by type and status", labels=["type", "status"]
        )
        depth = GaugeMetricFamily("celery_queue_depth", "Messages waiting in the broker queue", labels=["queue"])
        with self.app.app_context():
            counts, queues = self.snapshot()
        for (job_type, status), count in counts.items():
            jobs.add_metric([job_type, status], count)
        for queue, length in queues.items():
            depth.add_metric([queue], length)
        yield jobs
        yield depth


def _authorize(token: str) -> None:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Problem(
            "unauthenticated",
            "Send 'Authorization: Bearer <METRICS_TOKEN>'.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


def init_app(app: Flask, settings: Settings, job_snapshot: JobSnapshot) -> None:
    @app.after_request
    def _observe(response: Response) -> Response:
        """Count and time every request (the clock is the edge's: app/observability/timing.py)."""
        seconds = timing.elapsed_seconds()
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        if seconds is not None:
            HTTP_LATENCY.labels(request.method, endpoint).observe(seconds)
        return response

    if not settings.metrics_token and settings.is_production:
        log.warning("METRICS_TOKEN is not set: /metrics is disabled (404) in production")
        return

    def metrics() -> Response:
        if settings.metrics_token:
            _authorize(settings.metrics_token)
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)
        else:
            for collector in (
                HTTP_REQUESTS,
                HTTP_LATENCY,
                JOBS_SUBMITTED,
                EVENTS_RECORDED,
                EVENTS_PUBLISHED,
                EVENTS_DELIVERED,
                EVENT_DELIVERY_LAG,
                NOTIFICATIONS,
                NOTIFICATION_PROVIDER_LATENCY,
            ):
                registry.register(collector)
        registry.register(JobStateCollector(app, job_snapshot))
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
