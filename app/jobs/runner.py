"""Running a job exactly once in effect, on top of at-least-once delivery.

1. Claim: compare-and-swap ``queued -> running`` (or take over a ``running`` job whose lease
   expired), version + 1, committed at once so the relay can see the lease.
2. Work: the handler runs inside a fresh transaction and returns the result.
3. Finish: the terminal state is written with a compare-and-swap on the claimed version *in the
   same transaction as the handler's changes*. If another worker took the job over meanwhile the
   swap matches nothing and everything rolls back: a redelivered message, a duplicate publish or
   a zombie worker can never apply the work twice.
4. Report, after commit: wake long-pollers, send the callback, log.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, update

from app.extensions import db
from app.jobs import report
from app.jobs.broker import publish
from app.jobs.types import job_type
from app.models import Job, JobStatus, WebhookDelivery
from app.observability import trace
from app.problems import Problem
from app.runtime import current_settings

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker took the job over (our lease expired); our work must not commit."""


@dataclass
class JobRun:
    id: uuid.UUID
    type: str
    owner_user_id: uuid.UUID
    payload: dict[str, Any]
    version: int
    attempts: int
    trace_id: str | None
    callback_url: str | None
    delivery_id: uuid.UUID | None = field(default=None)

    def _swap(self, **values: Any) -> None:
        matched = db.session.execute(
            update(JOBS)
            .where(JOBS.c.id == self.id, JOBS.c.version == self.version, JOBS.c.status == JobStatus.RUNNING)
            .values(version=JOBS.c.version + 1, updated_at=func.now(), **values)
        ).rowcount
        if matched != 1:
            raise LeaseLost(str(self.id))
        self.version += 1

    def progress(self, done: int, total: int) -> None:
        """Record progress and renew the lease, in the current transaction (batch jobs commit after)."""
        lease = _lease(self.type)
        self._swap(
            progress_done=done,
            progress_total=total,
            lease_expires_at=func.now() + lease,
            dispatch_after=func.now() + lease,
        )

    def finish(self, status: JobStatus, *, result: Any = None, error: dict[str, Any] | None = None) -> None:
        """Write the terminal state (and the callback's outbox row) in the current transaction."""
        # clock_timestamp(), not now(): now() is when the transaction began, before the work ran.
        self._swap(status=status, result=result, error=error, finished_at=func.clock_timestamp(), lease_expires_at=None)
        if self.callback_url:
            self.delivery_id = uuid.uuid4()
            db.session.execute(
                insert(DELIVERIES).values(
                    id=self.delivery_id,
                    job_id=self.id,
                    user_id=self.owner_user_id,
                    url_encrypted=self.callback_url,
                    status="pending",
                    attempts=0,
                    next_attempt_at=func.now(),
                )
            )


Handler = Callable[[JobRun], dict[str, Any] | None]

#: Core tables: the runner's statements run twice per job, so they skip the ORM's machinery.
JOBS = Job.__table__
DELIVERIES = WebhookDelivery.__table__


def _lease(type_name: str) -> timedelta:
    return timedelta(seconds=job_type(type_name).time_limit + current_settings().job_lease_grace_seconds)


def claim(job_id: str | uuid.UUID, type_name: str) -> JobRun | None:
    lease = _lease(type_name)
    now = func.now()
    c = JOBS.c
    row = db.session.execute(
        update(JOBS)
        .where(
            c.id == uuid.UUID(str(job_id)),
            or_(c.status == JobStatus.QUEUED, and_(c.status == JobStatus.RUNNING, c.lease_expires_at <= now)),
        )
        .values(
            status=JobStatus.RUNNING,
            attempts=c.attempts + 1,
            version=c.version + 1,
            started_at=func.coalesce(c.started_at, func.clock_timestamp()),
            lease_expires_at=now + lease,
            dispatch_after=now + lease,
            updated_at=now,
        )
        .returning(
            c.id, c.type, c.owner_user_id, c.payload, c.version, c.attempts, c.trace_id, c.callback_url_encrypted
        )
    ).one_or_none()
    db.session.commit()
    if row is None:
        return None
    return JobRun(*row)


def execute(job_id: str, type_name: str, handler: Handler) -> None:
    """Claim, run, finish and report one job. Safe to call any number of times for one id."""
    run = claim(job_id, type_name)
    if run is None:
        log.info("job not claimable (finished or running elsewhere)", extra={"job_id": str(job_id)})
        return
    token = trace.set_current(run.trace_id or trace.current())
    try:
        _execute(run, handler)
    finally:
        trace.reset(token)


def _execute(run: JobRun, handler: Handler) -> None:
    settings = current_settings()
    if run.attempts > settings.job_max_attempts:
        _fail(run, _gave_up(run))
        return
    log.info("job started", extra={"job_id": str(run.id), "job_type": run.type, "attempt": run.attempts})
    try:
        result = handler(run)
        run.finish(JobStatus.SUCCEEDED, result=result or {})
        db.session.commit()
    except Problem as problem:
        db.session.rollback()
        _fail(run, problem)
        return
    except LeaseLost:
        db.session.rollback()
        log.warning("job lease lost; another worker owns it now", extra={"job_id": str(run.id)})
        return
    except Exception:
        db.session.rollback()
        log.exception("job raised", extra={"job_id": str(run.id), "job_type": run.type})
        _retry_or_fail(run)
        return
    report.finished(run, JobStatus.SUCCEEDED)


def _fail(run: JobRun, problem: Problem) -> None:
    try:
        run.finish(JobStatus.FAILED, error=problem.to_dict(run.trace_id))
        db.session.commit()
    except LeaseLost:
        db.session.rollback()
        return
    report.finished(run, JobStatus.FAILED)


def _gave_up(run: JobRun) -> Problem:
    return Problem("internal-error", f"The job could not be completed after {run.attempts - 1} attempts.")


def _retry_or_fail(run: JobRun) -> None:
    settings = current_settings()
    if run.attempts >= settings.job_max_attempts:
        _fail(run, Problem("internal-error", "The job could not be completed."))
        return
    backoff = min(60.0, 2.0**run.attempts) * random.uniform(0.8, 1.2)
    try:
        run._swap(
            status=JobStatus.QUEUED,
            lease_expires_at=None,
            dispatch_after=func.now() + timedelta(seconds=backoff + settings.job_republish_after_seconds),
        )
        db.session.commit()
    except LeaseLost:
        db.session.rollback()
        return
    publish(run.type, [str(run.id)], trace_id=run.trace_id, countdown=backoff)
