"""``system.ping``."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import system


@shared_task(**job_type("system.ping").task_options())
def ping(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "system.ping", system.ping, **resume)
