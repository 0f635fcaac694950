"""Privacy: the anonymization and export jobs, and the nightly retention scrub."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import anonymization, personal_data, retention
from app.unit_of_work import unit_of_work


@shared_task(**job_type("gdpr.anonymize").task_options())
def anonymize(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "gdpr.anonymize", anonymization.anonymize, **resume)


@shared_task(**job_type("gdpr.export").task_options())
def export(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "gdpr.export", personal_data.export, **resume)


@shared_task(name="gdpr.retention", soft_time_limit=3600, time_limit=3660)
def scrub_expired() -> dict[str, int]:
    with unit_of_work():
        return retention.scrub_personal_data()
