"""The lease heartbeat: a running job's lease is renewed while the process running it lives.

A lease is short (``JOB_LEASE_SECONDS``, 60 s in production) so that a job whose worker was
SIGKILLed (a deploy, the OOM killer) is taken over within about a minute instead of when its
hours-long time limit ends. A live worker must therefore keep its lease: each worker process has
one daemon thread that, every third of a lease, renews the lease of the job the process is
running, on a pooled connection of its own (never the job's transaction).

- Cost: ``watch`` and ``release`` only swap a reference under a lock; the thread sleeps until the
  watched job has run for a third of a lease, so a job shorter than that costs no statement.
- Safety: the renewal is a compare-and-swap on ``status = 'running'`` and the claim's attempt
  number, which only a new claim changes (progress commits move ``version`` but not the attempt),
  so a heartbeat can never extend a lease that another worker has taken over. It touches only
  ``lease_expires_at``, an unindexed column, so PostgreSQL can make it a HOT update.
- A failed renewal (database down) is logged and retried at the next beat; a lost lease stops
  renewals for that run, and its final compare-and-swap then fails as it must.

The thread starts lazily in the process that runs jobs (after a prefork worker's fork) and is
restarted if the process was forked since.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, update

from app.models import Job, JobStatus

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

JOBS = Job.__table__


@dataclass
class _Watched:
    job_id: uuid.UUID
    attempt: int
    engine: Engine
    lease: float
    renewed_at: float


class Heartbeat:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watched: _Watched | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        #: When the thread's current wait ends by itself (``inf``: it waits for a job; 0: not waiting).
        self._wakes_at = 0.0

    def watch(self, job_id: uuid.UUID, attempt: int, engine: Engine, lease_seconds: float) -> None:
        """Keep this job's lease alive until ``release``; called right after a successful claim.

        The thread is woken only if its wait would end after this job's first renewal is due (it
        waits for a job, or for a longer lease): otherwise it wakes on time and finds this job.
        Waking it for every job cost a thread switch per job.
        """
        now = time.monotonic()
        with self._cond:
            self._ensure_thread()
            self._watched = _Watched(job_id, attempt, engine, lease_seconds, now)
            if now + lease_seconds / 3 < self._wakes_at:
                self._cond.notify()

    def release(self, job_id: uuid.UUID) -> None:
        with self._cond:
            if self._watched is not None and self._watched.job_id == job_id:
                self._watched = None

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._wakes_at = math.inf  # a new thread looks at ``_watched`` before it first waits
        self._thread = threading.Thread(target=self._loop, name="job-lease-heartbeat", daemon=True)
        self._thread.start()

    def _next_due(self) -> _Watched | None:
        """Wait until the watched job is due for a renewal; return it (or None to look again)."""
        with self._cond:
            watched = self._watched
            if watched is None:
                self._wakes_at = math.inf
                self._cond.wait()
                self._wakes_at = 0.0
                return None
            due = watched.renewed_at + watched.lease / 3
            now = time.monotonic()
            if now < due:
                self._wakes_at = due
                self._cond.wait(due - now)
                self._wakes_at = 0.0
                return None
            watched.renewed_at = now
            return watched

    def _loop(self) -> None:
        while True:
            watched = self._next_due()
            if watched is not None:
                self._renew(watched)

    def _renew(self, watched: _Watched) -> None:
        try:
            with watched.engine.begin() as conn:
                matched = conn.execute(
                    update(JOBS)
                    .where(
                        JOBS.c.id == watched.job_id,
                        JOBS.c.status == JobStatus.RUNNING,
                        JOBS.c.attempts == watched.attempt,
                    )
                    .values(lease_expires_at=func.now() + timedelta(seconds=watched.lease))
                ).rowcount
        except Exception:  # the database is down or restarting: try again at the next beat
            log.warning("job lease renewal failed", extra={"job_id": str(watched.job_id)}, exc_info=True)
            return
        if matched == 1:
            log.debug("job lease renewed", extra={"job_id": str(watched.job_id)})
            return
        # Finished meanwhile (our own final commit) or taken over: either way nothing to keep.
        self.release(watched.job_id)


#: One per process.
HEARTBEAT = Heartbeat()


def watch(job_id: uuid.UUID, attempt: int, engine: Any, lease_seconds: float) -> None:
    HEARTBEAT.watch(job_id, attempt, engine, lease_seconds)


def release(job_id: uuid.UUID) -> None:
    HEARTBEAT.release(job_id)
