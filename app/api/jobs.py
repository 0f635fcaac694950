"""``/v1/jobs``: a job's state (poll or long-poll) and the caller's jobs."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from app.api.context import BEARER_SECURITY, current_principal, login_required
from app.api.openapi import APIBlueprint
from app.api.schemas import CURSOR_PATTERN
from app.jobs import list_jobs as jobs_of
from app.jobs.documents import JobDocument, JobPage, job_model
from app.jobs.queries import CAPPED_RETRY_AFTER_SECONDS, long_poll

bp = APIBlueprint("jobs", __name__, url_prefix="/v1/jobs", abp_tags=[Tag(name="jobs")], abp_security=BEARER_SECURITY)


class JobPath(BaseModel):
    job_id: uuid.UUID


class JobQuery(BaseModel):
    wait: int = Field(
        default=0, ge=0, le=30, description="Hold the request up to this many seconds until the job ends."
    )


class JobListQuery(BaseModel):
    type: str | None = Field(default=None, max_length=64, description="One of the job types, e.g. booking.create.")
    status: Literal["queued", "running", "succeeded", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(
        default=None, max_length=512, pattern=CURSOR_PATTERN, description="The next_cursor of the previous page."
    )


@bp.get("/<job_id>", responses={200: JobDocument})
@login_required
def get_job(path: JobPath, query: JobQuery) -> Any:
    """A job you submitted; ``?wait=N`` answers as soon as it is terminal (or after N seconds).

    A long-poll over a cap answers at once with ``Retry-After``: when to poll again.
    """
    waited = long_poll(current_principal(), path.job_id, query.wait)
    document = job_model(waited.job).model_dump(mode="json", exclude_unset=True)
    if waited.capped:
        return document, 200, {"Retry-After": str(CAPPED_RETRY_AFTER_SECONDS)}
    return document


@bp.get("", responses={200: JobPage})
@login_required
def list_jobs(query: JobListQuery) -> dict[str, object]:
    """Your jobs, newest first."""
    rows, next_cursor = jobs_of(
        current_principal(), job_type=query.type, status=query.status, limit=query.limit, cursor=query.cursor
    )
    items = [job_model(job).root for job in rows]
    return JobPage(items=items, next_cursor=next_cursor).model_dump(mode="json", exclude_unset=True)
