"""The outbox relay, run by beat every few seconds: nothing accepted is ever lost.

It re-publishes jobs still ``queued`` after ``job_republish_after_seconds`` (their message was
lost, e.g. the broker was flushed or down at submit time) and ``running`` jobs whose lease
expired (their worker died), and it publishes webhook deliveries whose retry time has come.
Rows are picked with ``FOR UPDATE SKIP LOCKED`` and pushed forward before publishing, so two
relays never double up and relays that piled up run back to back harmlessly; a duplicate message
is harmless anyway (the claim is a CAS). Idle, a relay is one indexed SELECT per table.

Each relay function runs in its caller's unit of work (the beat task's, ``app/unit_of_work.py``):
rows are pushed forward in it, and the messages are published by an ``after_commit`` callback,
so nothing is published for a push that did not commit. A publish the broker refused is
un-counted afterwards in a unit of work of its own.

Each re-publish is counted (``jobs.dispatches``, reset by every claim) and the next one backs off,
doubling from ``job_republish_after_seconds`` up to 16 times it. A job published
``job_max_dispatches`` times without any worker claiming it, while its queue is empty (the workers
took every message and none claimed this job: its type is one no worker knows), is failed with
``internal-error`` instead of being re-published forever. While its queue still holds messages the
job may simply be waiting behind a backlog, or for a worker to serve that queue at all: it keeps
being re-published at the longest interval and is never failed for it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import Interval, func, literal, or_, select, update

from app.extensions import db
from app.jobs import report, runner
from app.jobs.broker import publish, queue_depth
from app.jobs.types import queue_for
from app.models import EndpointDelivery, JobStatus, WebhookDelivery
from app.runtime import current_settings
from app.unit_of_work import current_unit_of_work, unit_of_work

log = logging.getLogger(__name__)

BATCH = 500
#: Re-publish delays double with each dispatch up to 2**MAX_BACKOFF_DOUBLINGS times the first.
MAX_BACKOFF_DOUBLINGS = 4

JOBS = runner.JOBS


def relay_jobs(batch: int = BATCH) -> int:
    """Push due jobs forward (or abandon them) in the current unit of work; publish after its commit."""
    uow = current_unit_of_work()
    settings = current_settings()
    c = JOBS.c
    now = func.now()
    rows = db.session.execute(
        select(*runner._CLAIMED, c.dispatches)
        .where(
            c.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            c.dispatch_after <= now,
            # A running job's heartbeat renews only its lease (a cheap HOT update), so its
            # dispatch_after may have passed while the lease still holds: skip it.
            or_(c.status == JobStatus.QUEUED, c.lease_expires_at <= now),
        )
        .order_by(c.dispatch_after)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return 0
    due, exhausted = [], []
    for row in rows:
        (exhausted if row.dispatches >= settings.job_max_dispatches else due).append(row)
    if exhausted:
        depth = {queue: queue_depth(queue) for queue in {queue_for(row.type) for row in exhausted}}
        due.extend(row for row in exhausted if depth[queue_for(row.type)] != 0)
        exhausted = [row for row in exhausted if depth[queue_for(row.type)] == 0]
    if due:
        first = settings.job_republish_after_seconds
        db.session.execute(
            update(JOBS)
            .where(c.id.in_([r.id for r in due]))
            .values(
                dispatches=c.dispatches + 1,
                dispatch_after=now
                + literal(timedelta(seconds=first), Interval)
                * func.power(2, func.least(c.dispatches, MAX_BACKOFF_DOUBLINGS)),
            )
        )
    abandoned = runner.abandon(exhausted) if exhausted else []
    uow.after_commit(lambda: _publish_jobs(due, abandoned))
    return len(due) + len(abandoned)


def _publish_jobs(due: list[Any], abandoned: list[runner.JobRun]) -> None:
    """After the push committed: report the abandoned jobs, publish the due ones."""
    for run in abandoned:
        report.finished(run, JobStatus.FAILED)
    failed = [row.id for row in due if not publish(row.type, [str(row.id)], trace_id=row.trace_id)]
    if failed:
        # The broker refused: this was no dispatch, so it must not count towards abandoning the job.
        c = JOBS.c
        with unit_of_work():
            db.session.execute(
                update(JOBS).where(c.id.in_(failed), c.dispatches > 0).values(dispatches=c.dispatches - 1)
            )
    if due:
        log.info("relay re-published jobs", extra={"count": len(due) - len(failed)})


def relay_webhooks(batch: int = BATCH) -> int:
    """Publish job callbacks that are due and have no live message (long delays live only in rows)."""
    return _relay_due(WebhookDelivery, "webhooks.deliver", batch)


def relay_endpoint_deliveries(batch: int = BATCH) -> int:
    """Publish operator webhook deliveries that are due (app/jobs/event_webhooks.py), the same way."""
    return _relay_due(EndpointDelivery, "webhooks.deliver_event", batch)


def _relay_due(model: type[WebhookDelivery] | type[EndpointDelivery], task: str, batch: int) -> int:
    """Due pending rows, pushed to now in the current unit of work and published after its commit.

    A row that is due ``job_republish_after_seconds`` past its time has no live message: its
    countdown message was lost, or its delay was too long for one. A claimed row is held past its
    deadline, so an attempt in flight is never published again.
    """
    uow = current_unit_of_work()
    settings = current_settings()
    grace = timedelta(seconds=settings.job_republish_after_seconds)
    rows = (
        db.session.execute(
            select(model.id)
            .where(model.status == "pending", model.next_attempt_at <= func.now() - grace)
            .order_by(model.next_attempt_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not rows:
        return 0
    db.session.execute(
        update(model)
        .where(model.id.in_(rows))
        .values(next_attempt_at=func.now())
        .execution_options(synchronize_session=False)
    )
    uow.after_commit(lambda: [publish(task, [str(delivery_id)]) for delivery_id in rows])
    return len(rows)
