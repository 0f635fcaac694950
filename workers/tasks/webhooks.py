"""``webhooks.deliver``: one signed attempt at a job callback; ``webhooks.deliver_event``: at an operator webhook."""

from celery import shared_task

from app.jobs import event_webhooks, webhooks


@shared_task(name="webhooks.deliver", soft_time_limit=60, time_limit=90)
def deliver(delivery_id: str) -> str:
    return webhooks.deliver(delivery_id)


@shared_task(name=event_webhooks.DELIVER_TASK, soft_time_limit=60, time_limit=90)
def deliver_event(delivery_id: str) -> str:
    return event_webhooks.deliver(delivery_id)
