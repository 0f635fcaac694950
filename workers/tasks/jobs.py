"""Housekeeping scheduled by beat: the outbox relay, idempotency-record expiry, the nightly purge."""

import logging

from celery import shared_task

from app.jobs import relay
from app.jobs.outage import is_connection_failure
from app.services import idempotency, retention
from app.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


@shared_task(name="jobs.relay", soft_time_limit=30, time_limit=45)
def relay_outbox() -> dict[str, int]:
    try:
        with unit_of_work():
            jobs = relay.relay_jobs()
        with unit_of_work():
            webhooks = relay.relay_webhooks()
        with unit_of_work():
            endpoint_webhooks = relay.relay_endpoint_deliveries()
        return {"jobs": jobs, "webhooks": webhooks, "endpoint_webhooks": endpoint_webhooks}
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        # Beat sends the next one in a few seconds; a traceback every interval would drown the logs.
        log.warning("relay skipped: database unavailable")
        return {"jobs": 0, "webhooks": 0, "endpoint_webhooks": 0}


@shared_task(name="jobs.purge_idempotency_keys", soft_time_limit=60, time_limit=90)
def purge_idempotency_keys() -> int:
    with unit_of_work():
        return idempotency.purge_expired()


@shared_task(name="jobs.purge_finished", soft_time_limit=1800, time_limit=1860)
def purge_finished() -> dict[str, int]:
    with unit_of_work():
        return retention.purge_finished_jobs()
