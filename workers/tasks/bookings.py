"""Booking jobs and the scheduled no-show / overstay transitions."""

from typing import Any

from celery import shared_task

from app import jobs
from app.jobs.types import job_type
from app.services import booking_schedule, bookings
from app.unit_of_work import unit_of_work


@shared_task(**job_type("booking.create").task_options())
def create(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "booking.create", bookings.book, **resume)


@shared_task(**job_type("booking.cancel").task_options())
def cancel(job_id: str, **resume: Any) -> None:
    jobs.execute(job_id, "booking.cancel", bookings.cancel, **resume)


@shared_task(name="bookings.mark_overdue", soft_time_limit=50, time_limit=60)
def mark_overdue() -> dict[str, int]:
    with unit_of_work():
        return booking_schedule.mark_overdue()
