"""WhatsApp messages: one ``notification.send`` job per message (app/services/notifications.py)."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import notifications


@shared_task(**job_type("notification.send").task_options())
def send(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "notification.send", notifications.send, **resume)
