"""``record``: the one way a service emits a domain event (the transactional outbox).

The event row is added to the current unit of work's session, so it commits with the change it
reports, or not at all: no event without its change, none for a rollback. Its hand-over to the
bus is registered with ``after_commit``; should the hand-over fail (Redis down, a crash right
after the commit), the row stays unpublished and the relay (``app/events/relay.py``) hands it
over a few seconds later.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from app.domain.events import check_data
from app.events.dispatch import hand_over
from app.models import Event
from app.observability import metrics
from app.unit_of_work import UnitOfWork, current_unit_of_work

_PENDING = "_estacionate_pending_events"


def record(
    type: str,
    *,
    organization_id: uuid.UUID | None,
    building_id: uuid.UUID | None,
    aggregate: tuple[str, uuid.UUID],
    data: dict[str, Any],
) -> Event:
    """Add the event to the current unit of work; it is handed to the bus once that commits.

    ``data`` must have exactly the keys the catalogue (``app/domain/events.py``) lists for
    ``type``; anything else raises ``InvalidEvent`` (a programming error, caught by tests).
    """
    event_type = check_data(type, data)
    uow = current_unit_of_work()
    aggregate_type, aggregate_id = aggregate
    event = Event(
        id=uuid.uuid4(),
        type=event_type.value,
        occurred_at=datetime.now(UTC),
        organization_id=organization_id,
        building_id=building_id,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        data=data,
    )
    uow.session.add(event)
    _pending(uow).append(event.id)
    metrics.EVENTS_RECORDED.labels(type=event_type.value).inc()
    return event


def _pending(uow: UnitOfWork) -> list[uuid.UUID]:
    """The unit of work's events' ids, handed over together by one ``after_commit`` callback.

    Ids, not the rows: after the commit every row is expired, and reading ``event.id`` would
    reload each one (a SELECT per event: 200 per batch of a bulk anonymization)."""
    pending: list[uuid.UUID] | None = getattr(uow, _PENDING, None)
    if pending is None:
        pending = []
        setattr(uow, _PENDING, pending)
        captured = pending

        def _after_commit() -> None:
            setattr(uow, _PENDING, None)
            hand_over(list(captured))

        def _after_rollback() -> None:
            setattr(uow, _PENDING, None)

        uow.after_commit(_after_commit)
        uow.after_rollback(_after_rollback)
    return pending
