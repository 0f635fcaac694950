"""Housekeeping scheduled by beat: the outbox relay and idempotency-record expiry."""

from celery import shared_task

from app.jobs import relay
from app.services import idempotency


@shared_task(name="jobs.relay", soft_time_limit=30, time_limit=45)
def relay_outbox() -> dict[str, int]:
    return {"jobs": relay.relay_jobs(), "webhooks": relay.relay_webhooks()}


@shared_task(name="jobs.purge_idempotency_keys", soft_time_limit=60, time_limit=90)
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired()
