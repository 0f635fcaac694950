"""The job document: what ``GET /v1/jobs/{id}``, job lists and webhooks show of a job."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain.timefmt import rfc3339
from app.models import Job


def job_document(job: Job) -> dict[str, Any]:
    progress = None
    if job.progress_total is not None:
        progress = {"done": job.progress_done or 0, "total": job.progress_total}
    return {
        "id": str(job.id),
        "type": job.type,
        "status": job.status,
        "progress": progress,
        "result": job.result,
        "error": job.error,
        "attempts": job.attempts,
        "created_at": rfc3339(job.created_at),
        "started_at": rfc3339(job.started_at),
        "finished_at": rfc3339(job.finished_at),
    }


def accepted_document(job_id: uuid.UUID) -> dict[str, Any]:
    """The 202 answer of every job-creating endpoint."""
    return {"job_id": str(job_id), "status": "queued", "status_url": f"/v1/jobs/{job_id}"}
