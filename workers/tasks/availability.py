"""Availability generation: the per-building job, and beat's daily fan-out."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import availability_generation
from app.unit_of_work import unit_of_work


@shared_task(**job_type("availability.generate").task_options())
def generate(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "availability.generate", availability_generation.generate, **resume)


@shared_task(name="availability.generate_daily", soft_time_limit=300, time_limit=360)
def generate_daily() -> int:
    with unit_of_work():
        return availability_generation.submit_daily()
