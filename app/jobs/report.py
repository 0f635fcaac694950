"""After a job's terminal state commits: wake long-pollers, send its callback, log it.

Everything here is a side effect outside the transaction; each one is recoverable if it fails
(pollers re-read Postgres; the webhook row is picked up by the relay).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.events import current_bus
from app.jobs.broker import publish
from app.models import JobStatus

if TYPE_CHECKING:
    from app.jobs.runner import JobRun

log = logging.getLogger(__name__)


def channel(job_id: object) -> str:
    return f"job:{job_id}"


def finished(run: JobRun, status: JobStatus) -> None:
    log.info(
        "job finished",
        extra={"job_id": str(run.id), "job_type": run.type, "status": str(status), "attempt": run.attempts},
    )
    try:
        current_bus().publish(channel(run.id), str(status))
    except Exception:
        log.warning("could not publish job.finished; long-pollers will time out and re-read", exc_info=True)
    if run.delivery_id is not None:
        publish("webhooks.deliver", [str(run.delivery_id)], trace_id=run.trace_id)
