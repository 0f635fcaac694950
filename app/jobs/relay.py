"""The outbox relay, run by beat every few seconds: nothing accepted is ever lost.

It re-publishes jobs still ``queued`` after ``job_republish_after_seconds`` (their message was
lost, e.g. the broker was flushed or down at submit time) and ``running`` jobs whose lease
expired (their worker died), and it publishes webhook deliveries whose retry time has come.
Rows are picked with ``FOR UPDATE SKIP LOCKED`` and pushed forward before publishing, so two
relays never double up; a duplicate message is harmless anyway (the claim is a CAS).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update

from app.extensions import db
from app.jobs.broker import publish
from app.models import Job, JobStatus, WebhookDelivery
from app.runtime import current_settings

log = logging.getLogger(__name__)

BATCH = 500


def relay_jobs(batch: int = BATCH) -> int:
    settings = current_settings()
    rows = db.session.execute(
        select(Job.id, Job.type, Job.trace_id)
        .where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]), Job.dispatch_after <= func.now())
        .order_by(Job.dispatch_after)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        db.session.rollback()
        return 0
    db.session.execute(
        update(Job)
        .where(Job.id.in_([r.id for r in rows]))
        .values(dispatch_after=func.now() + timedelta(seconds=settings.job_republish_after_seconds))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    for row in rows:
        publish(row.type, [str(row.id)], trace_id=row.trace_id)
    log.info("relay re-published jobs", extra={"count": len(rows)})
    return len(rows)


def relay_webhooks(batch: int = BATCH) -> int:
    """Publish deliveries that are due and have no live message (long delays live only in rows)."""
    settings = current_settings()
    grace = timedelta(seconds=settings.job_republish_after_seconds)
    rows = (
        db.session.execute(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= func.now() - grace)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not rows:
        db.session.rollback()
        return 0
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(rows))
        .values(next_attempt_at=func.now())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    for delivery_id in rows:
        publish("webhooks.deliver", [str(delivery_id)])
    return len(rows)
