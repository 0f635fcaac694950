"""Price recalculation: the job, and beat's hourly check for buildings where it is 03:00."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import recalculation
from app.unit_of_work import unit_of_work


@shared_task(**job_type("pricing.recalculate").task_options())
def recalculate(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "pricing.recalculate", recalculation.recalculate, **resume)


@shared_task(name="pricing.recalculate_nightly", soft_time_limit=300, time_limit=360)
def recalculate_nightly() -> int:
    with unit_of_work():
        return recalculation.submit_nightly()
