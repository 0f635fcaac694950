"""Reading jobs: one job (optionally waiting for it to finish), a caller's list, metrics counts."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import func, select

from app.events import current_bus
from app.extensions import db
from app.jobs.broker import QUEUE
from app.jobs.report import channel
from app.models import Job, JobStatus
from app.problems import Problem
from app.runtime import current_redis
from app.security.rbac import Principal, can_view_job
from app.services.pagination import paginate

#: While waiting, Postgres is re-read at least this often even if no event arrives.
RECHECK_SECONDS = 5.0


def visible_job(principal: Principal, job_id: uuid.UUID) -> Job:
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or not can_view_job(principal, job):
        raise Problem("not-found", "No such job.")
    return job


def wait_for_job(principal: Principal, job_id: uuid.UUID, wait_seconds: float) -> Job:
    """The job, once terminal or after ``wait_seconds``; woken by ``job.finished`` events."""
    if wait_seconds <= 0:
        return visible_job(principal, job_id)
    deadline = time.monotonic() + wait_seconds
    # Listen before the first read, so a job finishing in between still wakes us.
    subscription = current_bus().subscribe(channel(job_id))
    try:
        while True:
            job = visible_job(principal, job_id)
            remaining = deadline - time.monotonic()
            if JobStatus(job.status).is_terminal or remaining <= 0:
                return job
            db.session.rollback()  # never sit idle in a transaction while waiting
            subscription.wait(min(remaining, RECHECK_SECONDS))
    finally:
        subscription.close()


def list_jobs(
    principal: Principal, *, job_type: str | None, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Job], str | None]:
    query = select(Job).where(Job.owner_user_id == principal.user_id)
    if job_type:
        query = query.where(Job.type == job_type)
    if status:
        query = query.where(Job.status == status)
    return paginate(query, [Job.created_at, Job.id], limit=limit, cursor=cursor, descending=True)


def metrics_snapshot() -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    counts = {
        (row.type, row.status): row.n
        for row in db.session.execute(
            select(Job.type, Job.status, func.count().label("n")).group_by(Job.type, Job.status)
        )
    }
    db.session.rollback()
    queues = {QUEUE: int(current_redis().llen(QUEUE))}
    return counts, queues
