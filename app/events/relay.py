"""The events relay (beat, every ``RELAY_INTERVAL_SECONDS``): nothing committed is ever lost.

- ``hand_over_unpublished``: events still unpublished ``EVENT_RELAY_AFTER_SECONDS`` after they
  occurred (their after-commit hand-over failed, Redis was flushed or down, or the process died
  between commit and publish) are handed over now, through the partial index
  ``ix_events_unpublished``. The bus's ``publish`` locks them ``FOR UPDATE SKIP LOCKED``, so a
  hand-over running at the same moment never doubles up (and a duplicate is harmless anyway).
- ``resend_unreceipted``: a published event that a durable subscriber wants but has no receipt
  for a while after publication (its message was lost with a SIGKILLed worker or a FLUSHALL, or
  its handler kept failing) is sent to that subscriber again. Only events of the last
  ``RESEND_WINDOW`` are looked at, so the sweep stays cheap and a handler that fails forever is
  not retried forever.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, func, select, update

from app.events.dispatch import CeleryEventBus, current_event_bus, deliver, send
from app.extensions import db
from app.models import Event, EventReceipt
from app.runtime import current_settings
from app.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

BATCH = 500
RESEND_WINDOW = timedelta(hours=1)


def hand_over_unpublished(batch: int = BATCH) -> int:
    """Hand over old unpublished events, oldest first, one batch per call of the bus; return how many."""
    cutoff = datetime.now(UTC) - timedelta(seconds=current_settings().event_relay_after_seconds)
    total = 0
    while True:
        with unit_of_work():
            ids: list[uuid.UUID] = list(
                db.session.execute(
                    select(Event.id)
                    .where(Event.published_at.is_(None), Event.occurred_at <= cutoff)
                    .order_by(Event.seq)
                    .limit(batch)
                ).scalars()
            )
        if not ids:
            return total
        handed = current_event_bus().publish(ids)
        total += handed
        if len(ids) < batch or handed == 0:
            return total


def resend_unreceipted(batch: int = BATCH) -> int:
    """Send deliveries again that have no receipt some time after publication; return how many.

    Each resent event's ``published_at`` moves to now, so the next sweep waits the grace period
    again before resending it (no resend storm while a backlog drains; duplicates are no-ops anyway).
    """
    bus = current_event_bus()
    now = datetime.now(UTC)
    grace = timedelta(seconds=max(current_settings().event_relay_after_seconds * 6, 5))
    total = 0
    resent: set[uuid.UUID] = set()
    for sub in bus.registry.all():
        conditions = [
            Event.published_at.is_not(None),
            Event.published_at <= now - grace,
            Event.occurred_at >= now - RESEND_WINDOW,
            ~exists().where(and_(EventReceipt.event_id == Event.id, EventReceipt.subscriber == sub.name)),
        ]
        if "*" not in sub.types:
            conditions.append(Event.type.in_(sorted(sub.types)))
        with unit_of_work():
            query = select(Event.id).where(*conditions).order_by(Event.seq).limit(batch)
            ids = list(db.session.execute(query).scalars())
        for event_id in ids:
            if isinstance(bus, CeleryEventBus):
                if not send(current_app.extensions["celery"], sub.name, event_id):
                    continue
            else:
                try:
                    deliver(sub.name, event_id, bus.registry)
                except Exception:  # the window bounds the retries
                    log.exception("durable subscriber failed again", extra={"subscriber": sub.name})
            resent.add(event_id)
            total += 1
    if resent:
        with unit_of_work():
            db.session.execute(
                update(Event)
                .where(Event.id.in_(resent), Event.published_at.is_not(None))
                .values(published_at=func.now())
                .execution_options(synchronize_session=False)
            )
        log.info("events relay resent deliveries", extra={"count": total})
    return total
