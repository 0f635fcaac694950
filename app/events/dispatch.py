"""The domain-event bus (DESIGN.md "Events"): hand-over after commit, durable subscribers, live listeners.

``DomainEventBus`` is the protocol of DESIGN.md: ``publish`` (hand committed events over),
``subscribe`` (register a durable subscriber; usually through ``@subscriber`` in
``app/events/subscribers.py``) and ``listen`` (a live, best-effort stream of an organization's
event documents). Two implementations, chosen by ``EVENT_BUS``:

- ``inprocess`` (unit tests): durable subscribers run synchronously, right after the event's
  commit, each delivery in its own unit of work;
- ``celery`` (everywhere else): one ``events.deliver`` Celery message per (subscriber, event) on
  the ``system`` queue, carrying only the subscriber's name and the event id; a worker runs the
  handler and inserts the receipt in the same unit of work.

Either way a delivery is ``deliver(name, event_id)``: the receipt ``(name, event_id)`` is inserted
first (``ON CONFLICT DO NOTHING``): a duplicate delivery finds it and is a no-op, a concurrent one
waits on the first's row lock and then finds it. The effect and the receipt commit together, so
delivery is at-least-once and the effect exactly-once.

Hand-over follows the jobs relay: the events are marked ``published_at`` (one ``UPDATE ...
RETURNING`` that commits by itself), the messages go out after that, and a refused publish un-marks them, so the relay
(``app/events/relay.py``) hands them over again. Live listeners get each event document over the
process's wake-up bus (``app/events/bus.py``, Redis pub/sub, channel ``event:<organization id>``),
the same one the job long-polls ride on.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.events.bus import EventBus, Subscription
from app.events.subscribers import REGISTRY, Handler, Registry, Subscriber
from app.extensions import db
from app.models import Event, EventReceipt
from app.models.event import event_document
from app.observability import metrics
from app.unit_of_work import in_unit_of_work, single_statement, unit_of_work

log = logging.getLogger(__name__)

EXTENSION_KEY = "estacionate.event_bus"
DELIVER_TASK = "events.deliver"
LIVE_PREFIX = "event:"
PLATFORM = "platform"


class DomainEventBus(Protocol):
    registry: Registry

    def publish(self, event_ids: Sequence[uuid.UUID]) -> int:
        """Hand committed, unpublished events over; return how many were handed over."""

    def subscribe(self, name: str, types: Iterable[str], handler: Handler) -> Subscriber: ...

    def listen(self, organization_id: uuid.UUID | None) -> Subscription: ...


_EVENTS = Event.__table__
_CLAIMABLE = (
    select(_EVENTS.c.id)
    .where(_EVENTS.c.id.in_(bindparam("ids", expanding=True)), _EVENTS.c.published_at.is_(None))
    .with_for_update(skip_locked=True)
    .cte("claimable")
)
#: Mark the given unpublished events handed over and return them: one statement, its own transaction.
_MARK_PUBLISHED = (
    update(_EVENTS).where(_EVENTS.c.id == _CLAIMABLE.c.id).values(published_at=func.now()).returning(*_EVENTS.c)
)


def live_channel(organization_id: uuid.UUID | str | None) -> str:
    return f"{LIVE_PREFIX}{organization_id or PLATFORM}"


class _Base:
    """What both implementations share: the registry, the live stream, the delivery itself."""

    via = "base"

    def __init__(self, wakeups: EventBus, registry: Registry = REGISTRY) -> None:
        self.registry = registry
        self._wakeups = wakeups

    def subscribe(self, name: str, types: Iterable[str], handler: Handler) -> Subscriber:
        return self.registry.add(name, types, handler)

    def listen(self, organization_id: uuid.UUID | None) -> Subscription:
        """Event documents of one organization (``None``: platform events), as JSON strings."""
        return self._wakeups.subscribe(live_channel(organization_id))

    def publish(self, event_ids: Sequence[uuid.UUID]) -> int:
        if not event_ids:
            return 0
        # Marking is one statement that commits by itself: the events it returns are this call's
        # to hand over (locked rows another hand-over holds are skipped, as are published ones).
        rows = sorted(single_statement(_MARK_PUBLISHED, {"ids": list(event_ids)}), key=lambda row: row.seq)
        if not rows:
            return 0
        documents = [(row.id, row.type, row.organization_id, event_document(row)) for row in rows]
        self._after_marked(documents)
        return len(documents)

    def _after_marked(self, documents: list[tuple[uuid.UUID, str, uuid.UUID | None, dict[str, Any]]]) -> None:
        failed = self._dispatch([(event_id, type_) for event_id, type_, _, _ in documents])
        if failed:
            with unit_of_work():
                db.session.execute(
                    update(Event)
                    .where(Event.id.in_(failed))
                    .values(published_at=None)
                    .execution_options(synchronize_session=False)
                )
        metrics.EVENTS_PUBLISHED.labels(via=self.via).inc(len(documents) - len(failed))
        for event_id, _, organization_id, document in documents:
            if event_id in failed:
                continue
            try:
                self._wakeups.publish(live_channel(organization_id), json.dumps(document))
            except Exception:  # live listeners are best effort by nature
                log.warning("live event publish failed", exc_info=True)

    def _dispatch(self, events: list[tuple[uuid.UUID, str]]) -> set[uuid.UUID]:
        """Send each event to its durable subscribers; return the events whose hand-over failed."""
        raise NotImplementedError


class InProcessEventBus(_Base):
    """Durable subscribers run synchronously after the commit, each delivery its own unit of work."""

    via = "inprocess"

    def _dispatch(self, events: list[tuple[uuid.UUID, str]]) -> set[uuid.UUID]:
        for event_id, type_ in events:
            for sub in self.registry.for_type(type_):
                try:
                    deliver(sub.name, event_id, self.registry)
                except Exception:  # its effect rolled back with its receipt; the relay's sweep retries
                    log.exception(
                        "durable subscriber failed", extra={"subscriber": sub.name, "event_id": str(event_id)}
                    )
        return set()


class CeleryEventBus(_Base):
    """One ``events.deliver`` message per (subscriber, event), ids only, on the ``system`` queue."""

    via = "celery"

    def _dispatch(self, events: list[tuple[uuid.UUID, str]]) -> set[uuid.UUID]:
        celery = current_app.extensions["celery"]
        failed: set[uuid.UUID] = set()
        for event_id, type_ in events:
            for sub in self.registry.for_type(type_):
                if not send(celery, sub.name, event_id):
                    failed.add(event_id)
                    break
        return failed


def send(celery: Any, subscriber: str, event_id: uuid.UUID) -> bool:
    """Publish one delivery message; False when the broker refused it."""
    from app.jobs.broker import PUBLISH_RETRY_POLICY  # late: app.jobs imports app.events

    try:
        celery.send_task(DELIVER_TASK, args=[subscriber, str(event_id)], retry=True, retry_policy=PUBLISH_RETRY_POLICY)
        return True
    except Exception:
        log.warning("event delivery publish failed", extra={"subscriber": subscriber}, exc_info=True)
        return False


def deliver(name: str, event_id: uuid.UUID, registry: Registry = REGISTRY) -> bool:
    """Run subscriber ``name`` on the event with its receipt, in one unit of work; False: nothing to do.

    Nothing to do: the receipt exists (a duplicate delivery), the event is gone (purged), or no
    subscriber of that name is registered in this process (logged: a deploy without it).
    """
    sub = registry.get(name)
    if sub is None:
        log.warning("delivery for an unknown subscriber dropped", extra={"subscriber": name})
        return False
    with unit_of_work():
        event = db.session.get(Event, event_id)
        if event is None or not sub.wants(event.type):
            return False
        inserted = db.session.execute(
            pg_insert(EventReceipt)
            .values(subscriber=name, event_id=event_id)
            .on_conflict_do_nothing()
            .returning(EventReceipt.event_id)
        ).first()
        if inserted is None:
            return False
        sub.handler(event)
        occurred_at = event.occurred_at
        type_ = event.type
    metrics.EVENTS_DELIVERED.labels(subscriber=name, type=type_).inc()
    metrics.EVENT_DELIVERY_LAG.labels(subscriber=name).observe(
        max((datetime.now(UTC) - occurred_at).total_seconds(), 0.0)
    )
    return True


def current_event_bus() -> DomainEventBus:
    return current_app.extensions[EXTENSION_KEY]


def hand_over(event_ids: Sequence[uuid.UUID]) -> None:
    """After a commit: hand the unit of work's events to the bus (the relay covers any failure).

    A batch job's progress commit (``run.checkpoint``) runs its callbacks while the job's unit of
    work is still open; the hand-over (a unit of work of its own) is then left to the relay.
    """
    if in_unit_of_work():
        log.debug("events committed by a checkpoint are left to the relay", extra={"count": len(event_ids)})
        return
    try:
        current_event_bus().publish(event_ids)
    except Exception:  # the rows stay unpublished; the relay hands them over in a few seconds
        log.warning("event hand-over failed; the relay will retry", exc_info=True)


def build(kind: str, wakeups: EventBus) -> DomainEventBus:
    if kind == "inprocess":
        return InProcessEventBus(wakeups)
    if kind == "celery":
        return CeleryEventBus(wakeups)
    raise ValueError(f"EVENT_BUS must be inprocess or celery, got {kind!r}")
