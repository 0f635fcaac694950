"""Every job type: the Celery queue it runs on and the time limits its task runs under.

Queues keep one kind of work from waiting behind another (README "Jobs: how work runs"):

- ``interactive``: what a person is waiting for right now (bookings, cancellations, WhatsApp
  messages: ``notification.send``). Short by construction; served by its own worker processes.
- ``bulk``: long or batch work (``system.ping`` with its sleeps, price recalculation, availability
  generation, key rotation, and later ``gdpr.anonymize`` / ``gdpr.export``).
- ``system``: the machinery itself (the outbox relay, every beat schedule, webhook deliveries).
  Anything that is not a job type lands here: it is ``task_default_queue``.

A new job type declares its queue here and nowhere else: Celery's ``task_routes`` is derived from
this table, for the API's publishes and the workers' alike.

The time limits bound a whole run; they are not the lease. A running job's lease is short
(``JOB_LEASE_SECONDS``) and renewed while its worker lives, so a job whose worker died is taken
over within about a lease, however long it is allowed to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INTERACTIVE = "interactive"
BULK = "bulk"
SYSTEM = "system"
QUEUES = (INTERACTIVE, BULK, SYSTEM)


@dataclass(frozen=True)
class JobType:
    name: str
    queue: str
    soft_time_limit: int
    time_limit: int
    #: Claims before the job fails ``internal-error``; None: ``JOB_MAX_ATTEMPTS``. A type whose
    #: handler asks for retries itself (``RetryLater``) needs room for them beyond crashes.
    max_attempts: int | None = None

    def task_options(self) -> dict[str, Any]:
        return {"name": self.name, "soft_time_limit": self.soft_time_limit, "time_limit": self.time_limit}


JOB_TYPES: dict[str, JobType] = {
    jt.name: jt
    for jt in (
        JobType("system.ping", BULK, soft_time_limit=10, time_limit=15),
        JobType("availability.generate", BULK, soft_time_limit=600, time_limit=660),
        JobType("booking.create", INTERACTIVE, soft_time_limit=20, time_limit=30),
        JobType("pricing.recalculate", BULK, soft_time_limit=2 * 3600, time_limit=2 * 3600 + 60),
        JobType("booking.cancel", INTERACTIVE, soft_time_limit=20, time_limit=30),
        # A message outliving the broker's visibility timeout is redelivered, finds the job leased
        # (its heartbeat renews the lease) and is dropped, so it cannot start a second run.
        JobType("keys.rotate", BULK, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60),
        # Bulk anonymization commits in batches with a resume point: a run cut short resumes.
        JobType("gdpr.anonymize", BULK, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60),
        JobType("gdpr.export", BULK, soft_time_limit=300, time_limit=360),
        # One WhatsApp message: the provider call has a 10 s timeout. Its delivery policy retries
        # up to 6 sends (app/domain/notifications.py); the rest is room for crashed attempts.
        JobType("notification.send", INTERACTIVE, soft_time_limit=30, time_limit=40, max_attempts=10),
    )
}


def job_type(name: str) -> JobType:
    return JOB_TYPES[name]


def max_attempts(name: str, default: int) -> int:
    """Claims a job of type ``name`` may have before it fails (``default``: ``JOB_MAX_ATTEMPTS``)."""
    jt = JOB_TYPES.get(name)
    return jt.max_attempts if jt is not None and jt.max_attempts is not None else default


def queue_for(task_name: str) -> str:
    """The queue a task name is routed to (``system`` for anything that is not a job type)."""
    jt = JOB_TYPES.get(task_name)
    return jt.queue if jt else SYSTEM


def task_routes() -> dict[str, dict[str, str]]:
    """Celery ``task_routes``: each job type to its queue; everything else goes to ``system``."""
    return {jt.name: {"queue": jt.queue} for jt in JOB_TYPES.values()}
