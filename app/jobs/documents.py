"""The job document: what ``GET /v1/jobs/{id}``, job lists and webhooks show of a job.

One model per job type, chosen by ``type``: a ``booking.create`` job's ``result`` is a typed
booking, a ``system.ping``'s is ``{"pong": true}``. The union is the ``JobDocument`` of the
OpenAPI document and the body of every job webhook; a test checks that every entry of
``JOB_TYPES`` has its variant here. A job of a type this version does not run (retired, or
written by a newer release) is shown too, as ``UnknownTypeJob``: it never has a result, since the
runner fails it (``internal-error``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, RootModel, Tag

from app.domain.timefmt import rfc3339
from app.jobs.results import (
    AnonymizationResult,
    BookingResult,
    ExportResult,
    GenerationResult,
    KeyRotationResult,
    NotificationResult,
    PingResult,
    RecalculationResult,
)
from app.jobs.types import JOB_TYPES
from app.models import Job
from app.representation import Document, Problem

JobStatusName = Literal["queued", "running", "succeeded", "failed"]


class JobProgress(Document):
    done: int
    total: int


class _JobFields(Document):
    id: str
    status: JobStatusName
    progress: JobProgress | None
    error: Problem | None = Field(description="The problem, once the job has failed.")
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None


class PingJob(_JobFields):
    type: Literal["system.ping"]
    result: PingResult | None


class AvailabilityGenerationJob(_JobFields):
    type: Literal["availability.generate"]
    result: GenerationResult | None


class BookingCreateJob(_JobFields):
    type: Literal["booking.create"]
    result: BookingResult | None


class BookingCancelJob(_JobFields):
    type: Literal["booking.cancel"]
    result: BookingResult | None


class PricingRecalculationJob(_JobFields):
    type: Literal["pricing.recalculate"]
    result: RecalculationResult | None


class KeyRotationJob(_JobFields):
    type: Literal["keys.rotate"]
    result: KeyRotationResult | None


class AnonymizationJob(_JobFields):
    type: Literal["gdpr.anonymize"]
    result: AnonymizationResult | None


class ExportJob(_JobFields):
    type: Literal["gdpr.export"]
    result: ExportResult | None = Field(description="null once purged, EXPORT_RETENTION_DAYS after it finished.")


class NotificationSendJob(_JobFields):
    type: Literal["notification.send"]
    result: NotificationResult | None


class UnknownTypeJob(_JobFields):
    """A job of a type this version does not run: it is failed by the runner, with no result."""

    type: str = Field(json_schema_extra={"not": {"enum": sorted(JOB_TYPES)}})
    result: None


UNKNOWN_TYPE = "unknown"


def _variant(document: Any) -> str:
    kind = document.get("type") if isinstance(document, dict) else getattr(document, "type", None)
    return kind if kind in JOB_TYPES else UNKNOWN_TYPE


JobVariant = Annotated[
    Annotated[PingJob, Tag("system.ping")]
    | Annotated[AvailabilityGenerationJob, Tag("availability.generate")]
    | Annotated[BookingCreateJob, Tag("booking.create")]
    | Annotated[BookingCancelJob, Tag("booking.cancel")]
    | Annotated[PricingRecalculationJob, Tag("pricing.recalculate")]
    | Annotated[KeyRotationJob, Tag("keys.rotate")]
    | Annotated[AnonymizationJob, Tag("gdpr.anonymize")]
    | Annotated[ExportJob, Tag("gdpr.export")]
    | Annotated[NotificationSendJob, Tag("notification.send")]
    | Annotated[UnknownTypeJob, Tag(UNKNOWN_TYPE)],
    Discriminator(_variant),
]


class JobDocument(RootModel[JobVariant]):
    """A job of any type; ``type`` says which ``result`` it carries once it has succeeded."""


#: The 202's ``Location`` header (API.md), documented on every job-accepting operation through the model.
LOCATION_HEADER = {
    "Location": {
        "description": "The job's status URL, /v1/jobs/{job_id} (as status_url): poll it, or long-poll with ?wait=",
        "required": True,
        "schema": {"type": "string"},
    }
}


class JobAccepted(Document):
    """The 202 of every job-creating endpoint; flask-openapi3 reads ``openapi_extra`` for its headers."""

    model_config = ConfigDict(openapi_extra={"headers": LOCATION_HEADER})  # type: ignore[typeddict-unknown-key]

    job_id: str
    status: Literal["queued"]
    status_url: str


class JobPage(Document):
    items: list[JobVariant]
    next_cursor: str | None


def job_model(job: Job) -> JobDocument:
    progress = None
    if job.progress_total is not None:
        progress = JobProgress(done=job.progress_done or 0, total=job.progress_total)
    return JobDocument.model_validate(
        {
            "id": str(job.id),
            "type": job.type,
            "status": str(job.status),
            "progress": progress,
            "result": job.result,
            "error": job.error,
            "attempts": job.attempts,
            "created_at": rfc3339(job.created_at),
            "started_at": rfc3339(job.started_at),
            "finished_at": rfc3339(job.finished_at),
        }
    )


def job_document(job: Job) -> dict[str, Any]:
    """The JSON body of a job (``exclude_unset``: a problem shows only the members it has)."""
    return job_model(job).model_dump(mode="json", exclude_unset=True)


def accepted_document(job_id: uuid.UUID) -> dict[str, Any]:
    """The 202 answer of every job-creating endpoint."""
    return JobAccepted(job_id=str(job_id), status="queued", status_url=f"/v1/jobs/{job_id}").model_dump(mode="json")
