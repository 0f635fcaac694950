"""``keys.rotate``: re-encrypt every value under the newest key."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import key_rotation


@shared_task(**job_type("keys.rotate").task_options())
def rotate(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "keys.rotate", key_rotation.rotate, **resume)
