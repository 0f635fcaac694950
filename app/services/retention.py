"""Retention: finished jobs and their webhook deliveries are deleted ``JOB_RETENTION_DAYS`` after
they finished (the nightly ``jobs.purge_finished`` beat task); personal data kept for the
platform's records is scrubbed ``PERSONAL_DATA_RETENTION_MONTHS`` (24) after, and export results
``EXPORT_RETENTION_DAYS`` (7) after (the nightly ``gdpr.retention`` task, ``scrub_personal_data``).

A job's payload and result can hold visitor names and plates, so keeping them forever is a
liability. The purge walks ``ix_jobs_finished`` oldest first in batches, each its own short
transaction: the rows that point at a batch of jobs (webhook deliveries, idempotency records)
go first, then the jobs. It is idempotent (a second run finds nothing) and safe beside a running
one (``FOR UPDATE SKIP LOCKED``). Audit rows stay: they name the job by id only, and the audit
trail is append-only.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update

from app.extensions import db
from app.models import AccessEvent, Booking, Event, IdempotencyKey, Job, JobStatus, Notification, WebhookDelivery
from app.runtime import current_settings
from app.services.anonymization import scrubbed_visitor
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


# --- personal data past its retention period (Law 21.719: kept no longer than its purpose) -------


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` minus calendar months (the day clamped to the month's length: 31 March - 1 = 28/29 Feb)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class Expiry:
    """One store's expired personal data: which rows (by primary key), and what scrubbing sets.

    ``due(cutoff)`` selects rows still holding the data and older than the cutoff, so a second run
    finds nothing (idempotent); ``values`` is the scrub. A message's row stays (template, status,
    times: the log of what was sent) once its destination and variables are gone.
    """

    name: str
    pk: Any
    due: Callable[[datetime], ColumnElement[bool]]
    values: Callable[[], dict[str, Any]]


EXPIRIES: tuple[Expiry, ...] = (
    Expiry(
        "bookings",
        Booking.id,
        lambda cutoff: (Booking.block_end < cutoff) & Booking.vehicle_plate.is_not(None),
        scrubbed_visitor,
    ),
    Expiry(
        "access_events",
        AccessEvent.id,
        lambda cutoff: (AccessEvent.occurred_at < cutoff) & AccessEvent.observed_plate.is_not(None),
        lambda: {"observed_plate": None},
    ),
    Expiry(
        "notifications",
        Notification.id,
        lambda cutoff: (Notification.created_at < cutoff) & Notification.destination.is_not(None),
        lambda: {"destination": None, "destination_bidx": None, "variables": None},
    ),
)


def scrub_personal_data(now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Scrub every store's personal data past ``PERSONAL_DATA_RETENTION_MONTHS``; purge old exports.

    Runs in the nightly task's unit of work, one checkpoint per batch (``FOR UPDATE SKIP LOCKED``,
    oldest first is not needed: every due row goes). ``now`` is the clock (tests pass another).
    """
    uow = current_unit_of_work()
    settings = current_settings()
    moment = now or datetime.now(UTC)
    cutoff = months_before(moment, settings.personal_data_retention_months)
    totals: dict[str, int] = {}
    for expiry in EXPIRIES:
        totals[expiry.name] = 0
        model = expiry.pk.class_
        while True:
            ids = (
                db.session.execute(
                    select(expiry.pk).where(expiry.due(cutoff)).limit(batch).with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            totals[expiry.name] += db.session.execute(
                update(model)
                .where(expiry.pk.in_(ids))
                .values(**expiry.values())
                .execution_options(synchronize_session=False)
            ).rowcount
            uow.checkpoint()
            if len(ids) < batch:
                break
    totals["exports"] = db.session.execute(
        update(Job)
        .where(
            Job.type == "gdpr.export",
            Job.result.is_not(None),
            Job.finished_at < moment - timedelta(days=settings.export_retention_days),
        )
        .values(result=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    uow.checkpoint()
    log.info(
        "scrubbed personal data past retention",
        extra={**totals, "retention_months": settings.personal_data_retention_months},
    )
    return totals
