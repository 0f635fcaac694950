"""Reading jobs: one job (optionally waiting for it to finish), a caller's list, metrics counts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel
from sqlalchemy import Uuid, bindparam, func, select

from app.events import current_bus
from app.extensions import db
from app.jobs.longpoll import current_longpolls
from app.jobs.report import channel
from app.models import Job, JobStatus
from app.models.pagination import paginate
from app.runtime import current_broker_redis
from app.security import rbac
from app.security.rbac import Capability, Principal
from app.unit_of_work import current_unit_of_work

#: While waiting, Postgres is re-read at least this often even if no event arrives.
RECHECK_SECONDS = 5.0


_JOBS = Job.__table__
#: What a job document and the permission decision read (never the payload or the callback URL),
#: by one statement built once: every poll, and every wake-up of a long-poll, runs it.
_VISIBLE = select(
    *(
        _JOBS.c[name]
        for name in (
            "id",
            "type",
            "owner_user_id",
            "status",
            "progress_done",
            "progress_total",
            "result",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        )
    )
).where(_JOBS.c.id == bindparam("job_id", type_=Uuid))


def visible_job(principal: Principal, job_id: uuid.UUID) -> Any:
    """A job its submitter (or a platform admin) may see; 404 for anyone else, like no such job.

    A row with the job's columns as they are now (not an ORM object: nothing to refresh in the
    identity map on each read of a long-poll).
    """
    job = db.session.execute(_VISIBLE, {"job_id": job_id}).one_or_none()
    rbac.require(principal, Capability.READ_JOB, rbac.of_job(job))
    return job


#: ``Retry-After`` (seconds) of a long-poll answered at once because a cap was reached: without
#: it a client polling again at once spins (each spin a whole authenticated request) until a slot
#: frees or the job ends.
CAPPED_RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Waited:
    """What a long-poll found: the job, and whether it answered at once because a cap was reached."""

    job: Any  # a row of ``visible_job``
    capped: bool = False


def wait_for_job(principal: Principal, job_id: uuid.UUID, wait_seconds: float) -> Any:
    """The job, once terminal or after ``wait_seconds``; woken by ``job.finished`` events.

    Waiting holds a long-poll slot (app/jobs/longpoll.py); with none free, the job as it is now.
    """
    return long_poll(principal, job_id, wait_seconds).job


def long_poll(principal: Principal, job_id: uuid.UUID, wait_seconds: float) -> Waited:
    """``wait_for_job``, also saying whether a cap answered it at once (the view adds ``Retry-After``)."""
    if wait_seconds <= 0:
        return Waited(visible_job(principal, job_id))
    deadline = time.monotonic() + wait_seconds
    # Listen before the first read, so a job finishing in between still wakes us.
    subscription = current_bus().subscribe(channel(job_id))
    slot = None
    try:
        while True:
            job = visible_job(principal, job_id)
            remaining = deadline - time.monotonic()
            if JobStatus(job.status).is_terminal or remaining <= 0:
                return Waited(job)
            current_unit_of_work().checkpoint()  # a read so far: never sit idle in a transaction while waiting
            if slot is None:
                slot = current_longpolls().take(principal.user_id, remaining)
                if slot is None:  # over a cap: answer now, like ?wait=0
                    return Waited(job, capped=True)
            subscription.wait(min(remaining, RECHECK_SECONDS))
    finally:
        subscription.close()
        if slot is not None:
            current_longpolls().give_back(slot)


def list_jobs(
    principal: Principal, *, job_type: str | None, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Job], str | None]:
    query = select(Job).where(Job.owner_user_id == principal.user_id)
    if job_type:
        query = query.where(Job.type == job_type)
    if status:
        query = query.where(Job.status == status)
    return paginate(query, [Job.created_at, Job.id], limit=limit, cursor=cursor, descending=True)


#: What a scrape counts: the jobs the partial index ``ix_jobs_relay`` covers. Finished jobs grow
#: without bound (a GROUP BY over them per scrape is a full scan); count them from logs or events.
UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def metrics_snapshot() -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Unfinished jobs by (type, status), and messages waiting per broker queue."""
    counts = {
        (row.type, row.status): row.n
        for row in db.session.execute(
            select(Job.type, Job.status, func.count().label("n"))
            .where(Job.status.in_(UNFINISHED))
            .group_by(Job.type, Job.status)
        )
    }
    return counts, queue_depths()


def queue_names() -> list[str]:
    """The broker queues: Celery's ``task_queues`` when configured, else its default queue."""
    conf = current_app.extensions["celery"].conf
    queues = conf.task_queues
    if queues:
        return sorted(queues) if isinstance(queues, Mapping) else sorted(queue.name for queue in queues)
    return [conf.task_default_queue]


def queue_depths() -> dict[str, int]:
    """Per queue, its messages in every priority list kombu's Redis transport keeps: one round trip."""
    client = current_broker_redis()
    names = queue_names()
    if client is None:
        return {}
    suffixes = [""] + [f"{RedisChannel.sep}{step}" for step in PRIORITY_STEPS if step]
    pipe = client.pipeline(transaction=False)
    for name in names:
        for suffix in suffixes:
            pipe.llen(name + suffix)
    lengths = pipe.execute()
    per = len(suffixes)
    return {name: sum(lengths[i * per : (i + 1) * per]) for i, name in enumerate(names)}
