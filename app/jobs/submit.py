"""Accepting a job: one transaction for the row, its audit and its idempotency record; publish after commit.

If the publish fails the row stays ``queued`` and the outbox relay publishes it later, so an
answer of 202 always means the job will run.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import func

from app.extensions import db
from app.jobs.broker import publish
from app.jobs.documents import accepted_document
from app.jobs.types import JOB_TYPES
from app.models import Job, JobStatus
from app.observability import trace
from app.observability.metrics import JOBS_SUBMITTED
from app.runtime import current_settings
from app.services import audit, idempotency

log = logging.getLogger(__name__)


def submit(
    job_type: str,
    payload: dict[str, Any],
    actor: audit.Actor,
    *,
    callback_url: str | None = None,
    idempotency_claim: idempotency.Claim | None = None,
) -> dict[str, Any]:
    """Record a job and publish it; return the 202 document."""
    if job_type not in JOB_TYPES:
        raise ValueError(f"unknown job type {job_type!r}")
    if actor.id is None and actor.type != "system":
        raise ValueError("only system jobs may have no owner")
    settings = current_settings()
    job = Job(
        type=job_type,
        owner_user_id=actor.id,
        status=JobStatus.QUEUED,
        payload=payload,
        callback_url=callback_url,
        trace_id=trace.current(),
        dispatch_after=func.now() + timedelta(seconds=settings.job_republish_after_seconds),
    )
    db.session.add(job)
    db.session.flush()
    job_id, trace_id = str(job.id), job.trace_id
    audit.record("job.submitted", actor, entity_type="job", entity_id=job_id, details={"type": job_type})
    document = accepted_document(job)
    if idempotency_claim is not None:
        idempotency.complete(idempotency_claim, 202, document, location=document["status_url"], job_id=job.id)
    db.session.commit()
    JOBS_SUBMITTED.labels(job_type).inc()
    log.info("job submitted", extra={"job_id": job_id, "job_type": job_type})
    publish(job_type, [job_id], trace_id=trace_id)
    return document
