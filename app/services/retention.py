"""Retention: finished jobs and their webhook deliveries are deleted ``JOB_RETENTION_DAYS`` after
they finished (the nightly ``jobs.purge_finished`` beat task).

A job's payload and result can hold visitor names and plates, so keeping them forever is a
liability. The purge walks ``ix_jobs_finished`` oldest first in batches, each its own short
transaction: the rows that point at a batch of jobs (webhook deliveries, idempotency records)
go first, then the jobs. It is idempotent (a second run finds nothing) and safe beside a running
one (``FOR UPDATE SKIP LOCKED``). Audit rows stay: they name the job by id only, and the audit
trail is append-only.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import Event, IdempotencyKey, Job, JobStatus, WebhookDelivery
from app.runtime import current_settings
from app.unit_of_work import current_unit_of_work

log = logging.getLogger(__name__)

BATCH = 1000


def purge_finished_jobs(batch: int = BATCH) -> dict[str, int]:
    """Delete jobs finished more than the retention period ago; return what was deleted.

    Runs in the beat task's unit of work; each batch ends it with a checkpoint, so no lock or
    transaction is held longer than one batch.
    """
    uow = current_unit_of_work()
    cutoff = func.now() - timedelta(days=current_settings().job_retention_days)
    totals = {"jobs": 0, "webhook_deliveries": 0, "idempotency_keys": 0}
    while True:
        ids = (
            db.session.execute(
                select(Job.id)
                .where(Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED]), Job.finished_at < cutoff)
                .order_by(Job.finished_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if not ids:
            break
        totals["webhook_deliveries"] += db.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.job_id.in_(ids)).execution_options(synchronize_session=False)
        ).rowcount
        totals["idempotency_keys"] += db.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.job_id.in_(ids)).execution_options(synchronize_session=False)
        ).rowcount
        totals["jobs"] += db.session.execute(
            delete(Job).where(Job.id.in_(ids)).execution_options(synchronize_session=False)
        ).rowcount
        uow.checkpoint()
        if len(ids) < batch:
            break
    log.info("purged finished jobs", extra={**totals, "retention_days": current_settings().job_retention_days})
    return totals


def purge_events(batch: int = BATCH) -> int:
    """Delete events (their receipts cascade) that occurred more than ``EVENT_RETENTION_DAYS`` ago.

    Runs in the nightly ``events.purge`` task's unit of work, one checkpoint per batch, oldest
    first through ``ix_events_occurred_at``. Event data holds no personal data; the window is the
    catch-up API's (API.md: "kept at least 30 days").
    """
    uow = current_unit_of_work()
    days = current_settings().event_retention_days
    cutoff = func.now() - timedelta(days=days)
    total = 0
    while True:
        ids = (
            db.session.execute(
                select(Event.id)
                .where(Event.occurred_at < cutoff)
                .order_by(Event.occurred_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if not ids:
            break
        total += db.session.execute(
            delete(Event).where(Event.id.in_(ids)).execution_options(synchronize_session=False)
        ).rowcount
        uow.checkpoint()
        if len(ids) < batch:
            break
    log.info("purged events", extra={"events": total, "retention_days": days})
    return total
