"""``/v1/jobs``: a job's state (poll or long-poll) and the caller's jobs."""

from __future__ import annotations

import uuid
from typing import Literal

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.api.context import BEARER_SECURITY, current_principal, login_required
from app.api.schemas import PROBLEM_RESPONSES, JobDocument, JobPage, ProblemDocument
from app.jobs import job_document, list_jobs, wait_for_job

bp = APIBlueprint("jobs", __name__, url_prefix="/v1/jobs", abp_tags=[Tag(name="jobs")], abp_security=BEARER_SECURITY)


class JobPath(BaseModel):
    job_id: uuid.UUID


class JobQuery(BaseModel):
    wait: int = Field(
        default=0, ge=0, le=30, description="Hold the request up to this many seconds until the job ends."
    )


class JobListQuery(BaseModel):
    type: str | None = Field(default=None, max_length=64)
    status: Literal["queued", "running", "succeeded", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


@bp.get("/<job_id>", responses={200: JobDocument, 404: ProblemDocument, **PROBLEM_RESPONSES})
@login_required
def get_job(path: JobPath, query: JobQuery) -> dict[str, object]:
    """A job you submitted; ``?wait=N`` answers as soon as it is terminal (or after N seconds)."""
    return job_document(wait_for_job(current_principal(), path.job_id, query.wait))


@bp.get("", responses={200: JobPage, **PROBLEM_RESPONSES})
@login_required
def get_jobs(query: JobListQuery) -> dict[str, object]:
    """Your jobs, newest first."""
    rows, next_cursor = list_jobs(
        current_principal(), job_type=query.type, status=query.status, limit=query.limit, cursor=query.cursor
    )
    return {"items": [job_document(job) for job in rows], "next_cursor": next_cursor}
