"""Accepting a job: one transaction for the row, its audit and its idempotency record; publish after commit.

If the publish fails the row stays ``queued`` and the outbox relay publishes it later, so an
answer of 202 always means the job will run.

No single user can flood the queues: a user with ``JOB_MAX_UNFINISHED_PER_USER`` jobs queued or
running gets 429 ``rate-limited`` and nothing is created. The check is part of the one INSERT
statement (it counts at most N entries of the partial index ``ix_jobs_owner_unfinished``), so
accepting a job still costs one round trip. It is a soft cap: requests racing each other each
see the count before the others commit, so a user can pass it by at most their concurrent
requests. System jobs (no owner) are exempt.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from app.extensions import db
from app.jobs.broker import publish
from app.jobs.documents import accepted_document
from app.jobs.types import JOB_TYPES
from app.models.types import EncryptedJSON, EncryptedText
from app.observability import trace
from app.observability.metrics import JOBS_SUBMITTED
from app.problems import Problem
from app.runtime import current_settings
from app.services import audit, idempotency

log = logging.getLogger(__name__)


#: Tells a client over its quota when to try again.
QUOTA_RETRY_AFTER_SECONDS = 5

#: The quota check, the job row and its audit row in one round trip (data-modifying CTEs); this
#: runs on every job-creating request, so it avoids the ORM's unit of work. It returns a row only
#: if the job was inserted. (With no owner, ``owner_user_id = NULL`` counts nothing: exempt.)
_INSERT = text(
    """
    WITH unfinished AS (
        SELECT 1 FROM jobs
        WHERE owner_user_id = :owner AND status IN ('queued', 'running')
        LIMIT :quota
    ),
    job AS (
        INSERT INTO jobs (id, type, owner_user_id, status, payload, callback_url_encrypted, trace_id,
                          dispatch_after, attempts, version, created_at, updated_at)
        SELECT :id, :type, :owner, 'queued', :payload, :callback_url, :trace_id,
               now() + make_interval(secs => :republish_after), 0, 1, now(), now()
        WHERE (SELECT count(*) FROM unfinished) < :quota
        RETURNING id
    )
    INSERT INTO audit_logs (actor_type, actor_id, action, entity_type, entity_id, metadata, ip, user_agent,
                            trace_id, occurred_at)
    SELECT :actor_type, :owner, 'job.submitted', 'job', CAST(:id AS text), :details, :ip, :user_agent,
           :trace_id, now()
    FROM job
    RETURNING 1
    """
).bindparams(
    bindparam("id", type_=Uuid),
    bindparam("owner", type_=Uuid),
    bindparam("payload", type_=EncryptedJSON("jobs.payload")),
    bindparam("callback_url", type_=EncryptedText("jobs.callback_url")),
    bindparam("details", type_=JSONB),
)


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
    job_id, trace_id = uuid.uuid4(), trace.current()
    settings = current_settings()
    inserted = db.session.execute(
        _INSERT,
        {
            "id": job_id,
            "type": job_type,
            "owner": actor.id,
            "payload": payload,
            "callback_url": callback_url,
            "trace_id": trace_id,
            "republish_after": settings.job_republish_after_seconds,
            "quota": settings.job_max_unfinished_per_user,
            "actor_type": actor.type,
            "details": {"type": job_type},
            "ip": actor.ip,
            "user_agent": (actor.user_agent or "")[:256] or None,
        },
    ).first()
    if inserted is None:
        db.session.rollback()
        log.info("job refused: unfinished-job quota reached", extra={"job_type": job_type})
        raise Problem(
            "rate-limited",
            f"You have {settings.job_max_unfinished_per_user} unfinished jobs; wait for some to finish.",
            headers={"Retry-After": str(QUOTA_RETRY_AFTER_SECONDS)},
        )
    document = accepted_document(job_id)
    if idempotency_claim is not None:
        idempotency.complete(idempotency_claim, 202, document, location=document["status_url"], job_id=job_id)
    db.session.commit()
    JOBS_SUBMITTED.labels(job_type).inc()
    log.info("job submitted", extra={"job_id": str(job_id), "job_type": job_type})
    publish(job_type, [str(job_id)], trace_id=trace_id)
    return document
