"""``record``: the one way a service emits a domain event (the transactional outbox).

The event row is inserted in the current unit of work's transaction, so it commits with the change
it reports, or not at all: no event without its change, none for a rollback. Its hand-over to the
bus is registered with ``after_commit``; should the hand-over fail (Redis down, a crash right
after the commit), the row stays unpublished and the relay (``app/events/relay.py``) hands it
over a few seconds later.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

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
    """Insert the event in the current unit of work; it is handed to the bus once that commits.

    ``data`` must have exactly the keys the catalogue (``app/domain/events.py``) lists for
    ``type``; anything else raises ``InvalidEvent`` (a programming error, caught by tests).
    The row is inserted at once by one Core statement (no ORM flush on the hot path: a booking
    records one event per job); the ``Event`` returned is transient, for its values and ``id``.
    """
    event_type = check_data(type, data)
    uow = current_unit_of_work()
    aggregate_type, aggregate_id = aggregate
    values = {
        "id": uuid.uuid4(),
        "type": event_type.value,
        "occurred_at": datetime.now(UTC),
        "organization_id": organization_id,
        "building_id": building_id,
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "data": data,
    }
    uow.session.execute(_INSERT, values)
    _pending(uow).append(values["id"])
    metrics.EVENTS_RECORDED.labels(type=event_type.value).inc()
    return Event(**values)


#: Built once: the statement's construction and cache key are not paid again per event.
_INSERT = insert(Event.__table__)


def _pending(uow: UnitOfWork) -> list[uuid.UUID]:
    """The unit of work's event ids, handed over together by one ``after_commit`` callback."""
    pending: list[uuid.UUID] | None = getattr(uow, _PENDING, None)
    if pending is None:
        pending = []
        setattr(uow, _PENDING, pending)
        captured = pending

        def _after_commit() -> None:
            setattr(uow, _PENDING, None)
            hand_over(captured)

        def _after_rollback() -> None:
            setattr(uow, _PENDING, None)

        uow.after_commit(_after_commit)
        uow.after_rollback(_after_rollback)
    return pending
