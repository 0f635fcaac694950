"""``events.deliver``: one durable subscriber on one event (app/events/dispatch.py), and the events relay.

The message carries only the subscriber's name and the event id. The handler's effect and the
receipt commit together; a duplicate message is a no-op. A handler that fails is retried with
backoff; if every retry fails (or the message is lost with its worker), the relay's sweep sends
the delivery again while the event has no receipt for that subscriber.
"""

import logging
import uuid

from celery import shared_task

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
