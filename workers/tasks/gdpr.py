"""Privacy jobs: anonymization (and, later in this module, export)."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import anonymization


@shared_task(**job_type("gdpr.anonymize").task_options())
def anonymize(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "gdpr.anonymize", anonymization.anonymize, **resume)
