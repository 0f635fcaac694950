"""Accepting a job: the row and its audit row join the use case's unit of work; publish after commit.

The job, its audit row and (when the request has an ``Idempotency-Key``) its idempotency record
commit together with whatever else the use case did, or not at all (``app/unit_of_work.py``).
The Celery message is published by an ``after_commit`` callback, so a worker never looks for a
job that is not committed. If the publish fails the row stays ``queued`` and the outbox relay
publishes it later, so an answer of 202 always means the job will run.

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
from app.models.audit import Actor
from app.models.types import EncryptedJSON, EncryptedText
from app.observability import trace
from app.observability.metrics import JOBS_SUBMITTED
from app.problems import Problem
from app.runtime import current_settings
from app.unit_of_work import current_unit_of_work

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
    actor: Actor,
    *,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """Record a job in the current unit of work, to be published once it commits; the 202 document."""
    if job_type not in JOB_TYPES:
        raise ValueError(f"unknown job type {job_type!r}")
    if actor.id is None and actor.type != "system":
        raise ValueError("only system jobs may have no owner")
    uow = current_unit_of_work()
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
    if inserted is None:  # the unit of work rolls back whatever the use case did with it
        log.info("job refused: unfinished-job quota reached", extra={"job_type": job_type})
        raise Problem(
            "rate-limited",
            f"You have {settings.job_max_unfinished_per_user} unfinished jobs; wait for some to finish.",
            headers={"Retry-After": str(QUOTA_RETRY_AFTER_SECONDS)},
        )
    uow.after_commit(lambda: _accepted(job_type, job_id, trace_id))
    return accepted_document(job_id)


def _accepted(job_type: str, job_id: uuid.UUID, trace_id: str | None) -> None:
    """After commit: count, log and publish the job (a failed publish is the relay's to repeat)."""
    JOBS_SUBMITTED.labels(job_type).inc()
    log.info("job submitted", extra={"job_id": str(job_id), "job_type": job_type})
    publish(job_type, [str(job_id)], trace_id=trace_id)
