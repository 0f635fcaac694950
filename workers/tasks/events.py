"""``events.fan_out`` and ``events.deliver``: durable subscribers on an event (app/events/dispatch.py), and the relay.

``events.fan_out`` (event id, subscriber names) is the hand-over's one message per event: each
named subscriber, in its own unit of work. A subscriber that failed there is sent
``events.deliver`` (subscriber name and event id) of its own, which retries with backoff. The handler's effect and the
receipt commit together; a duplicate message is a no-op. A handler that fails is retried with
backoff; if every retry fails (or the message is lost with its worker), the relay's sweep sends
the delivery again while the event has no receipt for that subscriber.
"""

import logging
import uuid

from celery import shared_task
from flask import current_app

from app.events import dispatch, relay
from app.jobs.outage import is_connection_failure
from app.services import retention
from app.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


@shared_task(
    name=dispatch.DELIVER_TASK,
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(Exception,),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def deliver(subscriber: str, event_id: str) -> bool:
    return dispatch.deliver(subscriber, uuid.UUID(event_id))


@shared_task(name=dispatch.FAN_OUT_TASK, soft_time_limit=60, time_limit=90)
def fan_out(event_id: str, subscribers: list[str]) -> list[str]:
    """Each named subscriber in turn; the ones that failed are sent their own ``events.deliver``."""
    failed = dispatch.fan_out(uuid.UUID(event_id), subscribers, dispatch.current_event_bus().registry)
    if failed:
        celery = current_app.extensions["celery"]
        for name in failed:
            # Not sent: the relay's sweep sends it once the grace period has passed.
            dispatch.send(celery, name, uuid.UUID(event_id), countdown=dispatch.RETRY_ALONE_AFTER_SECONDS)
    return failed


@shared_task(name="events.relay", soft_time_limit=30, time_limit=45)
def relay_events() -> dict[str, int]:
    try:
        return {"handed_over": relay.hand_over_unpublished(), "resent": relay.resend_unreceipted()}
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        log.warning("events relay skipped: database unavailable")
        return {"handed_over": 0, "resent": 0}


@shared_task(name="events.purge", soft_time_limit=1800, time_limit=1860)
def purge_events() -> int:
    with unit_of_work():
        return retention.purge_events()
