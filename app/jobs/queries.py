"""Reading jobs: one job (optionally waiting for it to finish), a caller's list, metrics counts."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from datetime import datetime

from sqlalchemy import func, select, tuple_

from app.events import current_bus
from app.extensions import db
from app.jobs.broker import QUEUE
from app.jobs.report import channel
from app.models import Job, JobStatus
from app.problems import Problem
from app.runtime import current_redis
from app.security.rbac import Principal, can_view_job

#: While waiting, Postgres is re-read at least this often even if no event arrives.
RECHECK_SECONDS = 5.0


def visible_job(principal: Principal, job_id: uuid.UUID) -> Job:
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or not can_view_job(principal, job):
        raise Problem("not-found", "No such job.")
    return job


def wait_for_job(principal: Principal, job_id: uuid.UUID, wait_seconds: float) -> Job:
    """The job, once terminal or after ``wait_seconds``; woken by ``job.finished`` events."""
    job = visible_job(principal, job_id)
    if wait_seconds <= 0 or JobStatus(job.status).is_terminal:
        return job
    deadline = time.monotonic() + wait_seconds
    subscription = current_bus().subscribe(channel(job_id))
    try:
        while True:
            db.session.rollback()  # never sit idle in a transaction while waiting
            job = visible_job(principal, job_id)
            remaining = deadline - time.monotonic()
            if JobStatus(job.status).is_terminal or remaining <= 0:
                return job
            subscription.wait(min(remaining, RECHECK_SECONDS))
    finally:
        subscription.close()


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(
            "validation-error", "The cursor is not valid.", errors=[{"pointer": "/cursor", "detail": "invalid cursor"}]
        ) from exc


def list_jobs(
    principal: Principal, *, job_type: str | None, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Job], str | None]:
    query = select(Job).where(Job.owner_user_id == principal.user_id)
    if job_type:
        query = query.where(Job.type == job_type)
    if status:
        query = query.where(Job.status == status)
    if cursor:
        created_at, ident = decode_cursor(cursor)
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(created_at, ident))
    rows = list(db.session.execute(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)).scalars())
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


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
