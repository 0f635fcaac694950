"""``webhooks.deliver``: one signed attempt at a job callback."""

from celery import shared_task

from app.jobs import webhooks


@shared_task(name="webhooks.deliver", soft_time_limit=60, time_limit=90)
def deliver(delivery_id: str) -> str:
    return webhooks.deliver(delivery_id)
