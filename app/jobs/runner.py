"""Running a job exactly once in effect, on top of at-least-once delivery.

1. Claim: compare-and-swap ``queued -> running`` (or take over a ``running`` job whose lease
   expired), attempt + 1, version + 1, committed at once so the relay can see the lease: one
   ``UPDATE ... RETURNING`` that is its own transaction (``single_statement``, no BEGIN/COMMIT
   round trips). The
   claim returns the payload's ciphertext; it is decrypted afterwards, in Python, so a payload no
   key of the ring opens is a failed attempt like any other instead of a claim that never commits.
2. Work: the handler runs inside a fresh transaction, the job's unit of work
   (``app/unit_of_work.py``; the handler adds to the session and never commits, a batch job
   commits its progress through ``JobRun.checkpoint``), and returns the result. Meanwhile the
   process's heartbeat (``app/jobs/heartbeat.py``) renews the short lease every third of it.
3. Finish: the terminal state is written with a compare-and-swap on the claimed version *in the
   same transaction as the handler's changes*. If another worker took the job over meanwhile the
   swap matches nothing and everything rolls back: a redelivered message, a duplicate publish or
   a zombie worker can never apply the work twice.
4. Report, after commit: the handler's ``after_commit`` callbacks, then wake long-pollers, send
   the callback, log. Last, on a worker that serves the ``system`` queue, the durable subscribers
   of the events the job committed run in this same task, each in its own unit of work
   (``app/events/dispatch.py``, ``deliveries_after_job``); elsewhere they go as a message.

Failures:

- A typed failure (``Problem``) ends the job ``failed`` with that problem document.
- Any other exception is a failed attempt: re-queued with backoff and jitter, and ``failed`` with
  ``internal-error`` after ``JOB_MAX_ATTEMPTS`` (or its type's own ``max_attempts``).
- ``RetryLater(after_seconds)`` is a handler asking to run again later on a schedule of its own
  (a provider's 429): what the handler wrote commits with the job back in ``queued``, and the job
  is published again after the delay (a Celery countdown up to ``MAX_COUNTDOWN_SECONDS``; longer
  delays wait in ``dispatch_after`` for the relay, never in the broker).
- The database connection failing (``app/jobs/outage.py``) is not the job's fault: the task
  re-publishes itself within a few seconds, over and over for up to ``OUTAGE_RETRY_SECONDS``,
  carrying the attempt number it claimed. The claim takes back its own ``running`` job by that
  number (``status = 'running' AND attempts = :attempt``) without counting an attempt, so work in
  flight resumes within seconds of the database's return instead of when its lease runs out.
  The attempt number identifies a claim: only a new claim changes it, while the version also moves
  with every progress commit, whose outcome is unknown when the connection dies during it. A
  finish whose commit outcome is unknown is safe: if it did commit, the job is terminal and the
  retried message finds nothing to claim.
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, Interval, LargeBinary, and_, bindparam, case, func, insert, or_, type_coerce, update

from app.events.dispatch import deliveries_after_job
from app.extensions import db
from app.jobs import heartbeat, report
from app.jobs.broker import publish
from app.jobs.outage import is_connection_failure
from app.jobs.types import max_attempts
from app.models import Job, JobStatus, WebhookDelivery
from app.observability import trace
from app.problems import Problem
from app.runtime import current_settings
from app.unit_of_work import UnitOfWork, bound, current_unit_of_work, single_statement

log = logging.getLogger(__name__)

#: How long a task keeps re-publishing itself while the database is unreachable; past that the
#: lease (running jobs) or the relay (queued jobs) recovers it once the database is back.
OUTAGE_RETRY_SECONDS = 300.0
#: Retry delays while the database is down grow to this cap, so a job resumes within a few
#: seconds of the database's return.
OUTAGE_RETRY_MAX_DELAY = 3.0


#: Retry delays beyond this wait in the row for the relay instead of riding on a Celery countdown.
MAX_COUNTDOWN_SECONDS = 300.0


class RetryLater(Exception):
    """Raised by a handler: run the job again in ``after_seconds``; what it wrote is kept."""

    def __init__(self, after_seconds: float) -> None:
        self.after_seconds = max(0.0, after_seconds)
        super().__init__(f"retry in {self.after_seconds:.3f} s")


class LeaseLost(Exception):
    """Another worker took the job over (our lease expired); our work must not commit."""


@dataclass
class JobRun:
    id: uuid.UUID
    type: str
    owner_user_id: uuid.UUID | None
    version: int
    attempts: int
    trace_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    delivery_id: uuid.UUID | None = field(default=None)
    #: The state the last ``checkpoint(..., state=)`` committed (None on a first run): a batch job
    #: taken over after a crash resumes from here instead of from zero.
    resume: dict[str, Any] | None = None
    _sealed_payload: bytes | None = field(default=None, repr=False)
    _sealed_callback: bytes | None = field(default=None, repr=False)

    def open(self) -> None:
        """Decrypt the payload and callback URL the claim returned as ciphertext.

        Raises whatever the keyring raises (unknown key id, tampered ciphertext): the caller
        counts it as a failed attempt. The callback is opened first, so a job whose payload
        cannot be read still reports its failure to its callback.
        """
        if self._sealed_callback is not None:
            self.callback_url = JOBS.c.callback_url_encrypted.type.process_result_value(self._sealed_callback, None)
            self._sealed_callback = None
        if self._sealed_payload is not None:
            self.payload = JOBS.c.payload.type.process_result_value(self._sealed_payload, None)
            self._sealed_payload = None

    def _swap(self, *, expect: tuple[JobStatus, ...] = (JobStatus.RUNNING,), **values: Any) -> None:
        matched = db.session.execute(
            update(JOBS)
            .where(JOBS.c.id == self.id, JOBS.c.version == self.version, JOBS.c.status.in_(expect))
            .values(version=JOBS.c.version + 1, updated_at=func.now(), **values)
        ).rowcount
        if matched != 1:
            raise LeaseLost(str(self.id))
        self.version += 1

    def progress(self, done: int, total: int, state: dict[str, Any] | None = None) -> None:
        """Record progress and renew the lease, in the current transaction (see ``checkpoint``)."""
        extra: dict[str, Any] = {} if state is None else {"checkpoint": state}
        self._swap(progress_done=done, progress_total=total, lease_expires_at=func.now() + _lease(), **extra)
        if state is not None:
            self.resume = state

    def checkpoint(self, done: int, total: int, state: dict[str, Any] | None = None) -> None:
        """A batch job's progress commit: record progress, commit the batch so far, go on.

        The one commit a handler may cause: the runner owns the job's transaction, so a batch job
        asks it here instead of committing itself. The ``after_commit`` callbacks registered so
        far run now, since what they wait for is durable. ``state`` (ids and counts, no personal
        data) is the resume point committed with the batch: ``resume`` of a later claim.
        """
        self.progress(done, total, state)
        db.session.commit()
        current_unit_of_work().committed()

    def finish(
        self,
        status: JobStatus,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        expect: tuple[JobStatus, ...] = (JobStatus.RUNNING,),
    ) -> None:
        """Write the terminal state (and the callback's outbox row) in the current transaction."""
        matched = db.session.execute(
            _finish_statement(expect),
            {"job_id": self.id, "version": self.version, "status": status, "result": result, "error": error},
        ).rowcount
        if matched != 1:
            raise LeaseLost(str(self.id))
        self.version += 1
        if self.callback_url and self.owner_user_id is not None:
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


@functools.cache
def _finish_statement(expect: tuple[JobStatus, ...]) -> Any:
    """The terminal compare-and-swap, built once per ``expect`` (it runs for every job)."""
    c = JOBS.c
    return (
        update(JOBS)
        .where(
            c.id == bindparam("job_id", type_=c.id.type),
            c.version == bindparam("version", type_=Integer),
            c.status.in_(expect),
        )
        .values(
            version=c.version + 1,
            updated_at=func.now(),
            status=bindparam("status", type_=c.status.type),
            result=bindparam("result", type_=c.result.type),
            error=bindparam("error", type_=c.error.type),
            # clock_timestamp(), not now(): now() is when the transaction began, before the work ran.
            finished_at=func.clock_timestamp(),
            lease_expires_at=None,
        )
    )


#: Core tables: the runner's statements run twice per job, so they skip the ORM's machinery.
JOBS = Job.__table__
DELIVERIES = WebhookDelivery.__table__

_CLAIMED = (
    JOBS.c.id,
    JOBS.c.type,
    JOBS.c.owner_user_id,
    JOBS.c.version,
    JOBS.c.attempts,
    JOBS.c.trace_id,
    JOBS.c.checkpoint,
    # The ciphertexts as stored: decrypting inside the statement's result would raise before the
    # claim commits, and a job whose payload cannot be read would be re-published forever.
    type_coerce(JOBS.c.payload, LargeBinary).label("sealed_payload"),
    type_coerce(JOBS.c.callback_url_encrypted, LargeBinary).label("sealed_callback"),
)


def _lease() -> timedelta:
    return timedelta(seconds=current_settings().job_lease_seconds)


def _run_from(row: Any) -> JobRun:
    return JobRun(
        id=row.id,
        type=row.type,
        owner_user_id=row.owner_user_id,
        version=row.version,
        attempts=row.attempts,
        trace_id=row.trace_id,
        resume=row.checkpoint,
        _sealed_payload=row.sealed_payload,
        _sealed_callback=row.sealed_callback,
    )


def _claim_statement(resume: bool) -> Any:
    """The claim's ``UPDATE ... RETURNING`` (parameters ``job_id``, ``lease``, ``attempt``)."""
    now = func.now()
    c = JOBS.c
    claimable = [c.status == JobStatus.QUEUED, and_(c.status == JobStatus.RUNNING, c.lease_expires_at <= now)]
    attempts: Any = c.attempts + 1
    if resume:
        # Our own running job, whose transaction died with its connection: take it back as is.
        ours = and_(c.status == JobStatus.RUNNING, c.attempts == bindparam("attempt", type_=Integer))
        claimable.append(ours)
        attempts = case((ours, c.attempts), else_=c.attempts + 1)
    lease = bindparam("lease", type_=Interval)
    return (
        update(JOBS)
        .where(c.id == bindparam("job_id", type_=c.id.type), or_(*claimable))
        .values(
            status=JobStatus.RUNNING,
            attempts=attempts,
            dispatches=0,
            version=c.version + 1,
            started_at=func.coalesce(c.started_at, func.clock_timestamp()),
            lease_expires_at=now + lease,
            dispatch_after=now + lease,
            updated_at=now,
        )
        .returning(*_CLAIMED)
    )


#: Built once (the claim runs for every job): no statement construction or cache key per claim.
_CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}


def _claim_row(job_id: str | uuid.UUID, resume_attempt: int | None) -> Any:
    """The claim's UPDATE ... RETURNING, committed by itself (one round trip, no BEGIN/COMMIT)."""
    parameters: dict[str, Any] = {"job_id": uuid.UUID(str(job_id)), "lease": _lease()}
    if resume_attempt is not None:
        parameters["attempt"] = resume_attempt
    rows = single_statement(_CLAIM[resume_attempt is not None], parameters)
    return rows[0] if rows else None


def claim(job_id: str | uuid.UUID, type_name: str, *, resume_attempt: int | None = None) -> JobRun | None:
    """Claim a job (committed); None if it is finished or another worker's lease holds it."""
    row = _claim_row(job_id, resume_attempt)
    return None if row is None else _run_from(row)


def execute(
    job_id: str,
    type_name: str,
    handler: Handler,
    *,
    attempt: int | None = None,
    outage_since: float | None = None,
) -> None:
    """Claim, run, finish and report one job. Safe to call any number of times for one id.

    ``attempt`` and ``outage_since`` come only from a message this function re-published while
    the database was unreachable (see the module docstring).
    """
    try:
        row = _claim_row(job_id, attempt)
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        # If the claim committed but its answer was lost with the connection, the retry cannot
        # take it back by attempt number: the lease (JOB_LEASE_SECONDS) recovers it then.
        _after_outage(job_id, type_name, attempt, outage_since)
        return
    if row is None:
        log.info("job not claimable (finished or running elsewhere)", extra={"job_id": str(job_id)})
        return
    run = _run_from(row)
    token = trace.set_current(run.trace_id or trace.current())
    heartbeat.watch(run.id, run.attempts, db.engine, current_settings().job_lease_seconds)
    try:
        # The events the job commits reach their durable subscribers in this task, after the report.
        with deliveries_after_job():
            try:
                _execute(run, handler)
            finally:
                heartbeat.release(run.id)
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        _after_outage(run.id, run.type, run.attempts, outage_since)
    finally:
        trace.reset(token)


def _execute(run: JobRun, handler: Handler) -> None:
    settings = current_settings()
    if run.attempts > max_attempts(run.type, settings.job_max_attempts):
        _open_quietly(run)
        _fail(run, _gave_up(run))
        return
    log.info("job started", extra={"job_id": str(run.id), "job_type": run.type, "attempt": run.attempts})
    # The handler's unit of work: its changes, the terminal state and the callbacks it registered
    # (jobs it submitted, say) commit together, here; the handler itself never commits.
    uow = UnitOfWork(db.session)
    try:
        with bound(uow):
            run.open()
            result = handler(run)
            run.finish(JobStatus.SUCCEEDED, result=result or {})
        db.session.commit()
    except Problem as problem:
        if not problem.keep_changes:
            db.session.rollback()
            uow.rolled_back()
        _fail(run, problem, uow=uow)
        return
    except RetryLater as retry:
        _retry_later(run, retry.after_seconds, uow)
        return
    except LeaseLost:
        db.session.rollback()
        uow.rolled_back()
        log.warning("job lease lost; another worker owns it now", extra={"job_id": str(run.id)})
        return
    except Exception as exc:
        if is_connection_failure(exc):
            uow.rolled_back()
            raise
        db.session.rollback()
        uow.rolled_back()
        log.exception("job raised", extra={"job_id": str(run.id), "job_type": run.type})
        _retry_or_fail(run)
        return
    uow.committed()
    report.finished(run, JobStatus.SUCCEEDED)


def _open_quietly(run: JobRun) -> None:
    """Open what can be opened for a job that is about to fail anyway (its callback, mostly)."""
    try:
        run.open()
    except Exception:
        log.warning("job payload could not be decrypted", extra={"job_id": str(run.id)})


def _fail(
    run: JobRun,
    problem: Problem,
    *,
    expect: tuple[JobStatus, ...] = (JobStatus.RUNNING,),
    uow: UnitOfWork | None = None,
) -> None:
    """End the job ``failed`` (with what a ``keep_changes`` problem kept, when ``uow`` holds it)."""
    try:
        run.finish(JobStatus.FAILED, error=problem.to_dict(run.trace_id), expect=expect)
        db.session.commit()
    except LeaseLost:
        db.session.rollback()
        if uow is not None:
            uow.rolled_back()
        return
    if uow is not None:
        uow.committed()
    report.finished(run, JobStatus.FAILED)


def _gave_up(run: JobRun) -> Problem:
    return Problem("internal-error", f"The job could not be completed after {run.attempts - 1} attempts.")


def _retry_later(run: JobRun, delay: float, uow: UnitOfWork) -> None:
    """The handler asked to run again in ``delay`` s: commit what it wrote with the job re-queued."""
    if not _requeue(run, delay, uow):
        return
    log.info("job retried later", extra={"job_id": str(run.id), "job_type": run.type, "retry_in_s": round(delay, 3)})
    if delay <= MAX_COUNTDOWN_SECONDS:  # longer delays wait in dispatch_after for the relay
        publish(run.type, [str(run.id)], trace_id=run.trace_id, countdown=delay)


def _retry_or_fail(run: JobRun) -> None:
    settings = current_settings()
    if run.attempts >= max_attempts(run.type, settings.job_max_attempts):
        _fail(run, Problem("internal-error", "The job could not be completed."))
        return
    backoff = min(60.0, 2.0**run.attempts) * random.uniform(0.8, 1.2)
    if _requeue(run, backoff):
        publish(run.type, [str(run.id)], trace_id=run.trace_id, countdown=backoff)


def _requeue(run: JobRun, delay: float, uow: UnitOfWork | None = None) -> bool:
    """Put the job back in ``queued`` for ``delay`` s (plus the relay's grace), committed; False if lost."""
    settings = current_settings()
    try:
        run._swap(
            status=JobStatus.QUEUED,
            lease_expires_at=None,
            dispatch_after=func.now() + timedelta(seconds=delay + settings.job_republish_after_seconds),
        )
        db.session.commit()
    except LeaseLost:
        db.session.rollback()
        if uow is not None:
            uow.rolled_back()
        return False
    if uow is not None:
        uow.committed()
    return True


def _after_outage(job_id: str | uuid.UUID, type_name: str, attempt: int | None, since: float | None) -> None:
    """The database connection failed under this job: re-publish it shortly, carrying its claim."""
    try:
        db.session.rollback()
    except Exception:  # the connection is gone already; the pool has invalidated it
        log.debug("rollback after a connection failure failed", exc_info=True)
    since = since or time.time()
    waited = time.time() - since
    if waited > OUTAGE_RETRY_SECONDS:
        log.error(
            "database unavailable too long; the job's lease or the relay will recover it",
            extra={"job_id": str(job_id), "job_type": type_name, "waited_s": round(waited)},
        )
        return
    # The delay grows with the time already waited (0.5 s, 0.5, 1, 2, then every 3 s), with jitter.
    delay = min(OUTAGE_RETRY_MAX_DELAY, max(0.5, waited)) * random.uniform(0.8, 1.2)
    log.warning(
        "database unavailable; job retried shortly",
        extra={"job_id": str(job_id), "job_type": type_name, "attempt": attempt, "retry_in_s": round(delay, 2)},
    )
    publish(
        type_name,
        [str(job_id)],
        countdown=delay,
        kwargs={"attempt": attempt, "outage_since": since},
    )


def abandon(rows: list[Any]) -> list[JobRun]:
    """Fail, in the current transaction, jobs the relay published too often without a claim.

    ``rows`` carry the columns of ``_CLAIMED`` (the relay holds them ``FOR UPDATE``). Returns the
    runs to report once the caller has committed.
    """
    failed = []
    problem = Problem("internal-error", "No worker could take the job.")
    for row in rows:
        run = _run_from(row)
        _open_quietly(run)
        try:
            run.finish(
                JobStatus.FAILED, error=problem.to_dict(run.trace_id), expect=(JobStatus.QUEUED, JobStatus.RUNNING)
            )
        except LeaseLost:
            continue
        log.error("job abandoned: published too often without a claim", extra={"job_id": str(run.id)})
        failed.append(run)
    return failed
