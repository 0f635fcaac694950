"""Housekeeping scheduled by beat: the outbox relay, idempotency-record expiry, the nightly purge."""

import logging

from celery import shared_task

from app.jobs import relay
from app.jobs.outage import is_connection_failure
from app.services import idempotency, retention

log = logging.getLogger(__name__)


@shared_task(name="jobs.relay", soft_time_limit=30, time_limit=45)
def relay_outbox() -> dict[str, int]:
    try:
        return {"jobs": relay.relay_jobs(), "webhooks": relay.relay_webhooks()}
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        # Beat sends the next one in a few seconds; a traceback every interval would drown the logs.
        log.warning("relay skipped: database unavailable")
        return {"jobs": 0, "webhooks": 0}


@shared_task(name="jobs.purge_idempotency_keys", soft_time_limit=60, time_limit=90)
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired()


@shared_task(name="jobs.purge_finished", soft_time_limit=1800, time_limit=1860)
def purge_finished() -> dict[str, int]:
    return retention.purge_finished_jobs()
