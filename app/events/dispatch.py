"""The domain-event bus (DESIGN.md "Events"): hand-over after commit, durable subscribers, live listeners.

``DomainEventBus`` is the protocol of DESIGN.md: ``publish`` (hand committed events over),
``subscribe`` (register a durable subscriber; usually through ``@subscriber`` in
``app/events/subscribers.py``) and ``listen`` (a live, best-effort stream of an organization's
event documents). Two implementations, chosen by ``EVENT_BUS``:

- ``inprocess`` (unit tests): durable subscribers run synchronously, right after the event's
  commit, each delivery in its own unit of work;
- ``celery`` (everywhere else): one ``events.fan_out`` Celery message per event on the ``system``
  queue, carrying only the event's id and the names of the subscribers that want its type (as the
  handing-over process's registry knows them); a worker runs each of them in a unit of work of its
  own that also inserts its receipt. A subscriber that
  fails there gets a message of its own, ``events.deliver`` (subscriber name and event id), which
  retries with backoff; the relay's sweep sends the same message for a delivery still without a
  receipt later (a worker killed during the fan-out, say).

  One message per event and not per (subscriber, event): each message costs a publish and a
  Celery round trip (about 4 CPU-ms on 2 cores, bench/README.md "Changes for issue 15"), and a
  booking's event has two subscribers. Isolation between subscribers is unchanged: each has its
  own transaction and its own receipt, and one that fails never holds up or undoes another.
  Events committed by a job on a worker that serves the ``system`` queue need no message at all:
  their fan-out runs in the job's own Celery task once the job has reported
  (``deliveries_after_job``).

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import Text, Uuid, bindparam, func, select, update
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
FAN_OUT_TASK = "events.fan_out"
#: A subscriber that failed during a fan-out is sent its own ``events.deliver`` after this delay.
RETRY_ALONE_AFTER_SECONDS = 1.0
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


_RECEIPTS = EventReceipt.__table__
#: The receipt, built once (every delivery inserts one; building it cost 3.6 % of the worker).
_INSERT_RECEIPT = (
    pg_insert(_RECEIPTS)
    .values(subscriber=bindparam("subscriber", type_=Text), event_id=bindparam("event_id", type_=Uuid))
    .on_conflict_do_nothing()
    .returning(_RECEIPTS.c.event_id)
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
        self._after_marked(documents, {row.id: row for row in rows})
        return len(documents)

    def _after_marked(
        self,
        documents: list[tuple[uuid.UUID, str, uuid.UUID | None, dict[str, Any]]],
        rows: dict[uuid.UUID, Any] | None = None,
    ) -> None:
        """``rows``: the events' columns as the marking returned them, by id (spares a re-read)."""
        failed = self._dispatch([(event_id, type_) for event_id, type_, _, _ in documents], rows or {})
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

    def _dispatch(self, events: list[tuple[uuid.UUID, str]], rows: dict[uuid.UUID, Any]) -> set[uuid.UUID]:
        """Send each event to its durable subscribers; return the events whose hand-over failed."""
        raise NotImplementedError


class InProcessEventBus(_Base):
    """Durable subscribers run synchronously after the commit, each delivery its own unit of work."""

    via = "inprocess"

    def _dispatch(self, events: list[tuple[uuid.UUID, str]], rows: dict[uuid.UUID, Any]) -> set[uuid.UUID]:
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
    """One ``events.fan_out`` message per event with subscribers (its id, their names) on the ``system`` queue.

    Inside a job's run on a worker (``deliveries_after_job``), the fan-out of the few events the
    job committed runs in that same Celery task once the job has reported, instead of as a
    message of its own.
    """

    via = "celery"

    def _dispatch(self, events: list[tuple[uuid.UUID, str]], rows: dict[uuid.UUID, Any]) -> set[uuid.UUID]:
        celery = current_app.extensions["celery"]
        failed: set[uuid.UUID] = set()
        deferred = _DEFERRED.get()
        for event_id, type_ in events:
            names = [sub.name for sub in self.registry.for_type(type_)]
            if not names:
                continue
            if deferred is not None and len(deferred) < DEFER_AT_MOST:
                row = rows.get(event_id)
                deferred.append((event_id, names, Event(**row._mapping) if row is not None else None))
            elif not send_fan_out(celery, event_id, names):
                failed.add(event_id)
        return failed


#: Events of one job whose fan-out runs in the job's own task; beyond this they go as messages.
DEFER_AT_MOST = 10
#: (event id, subscriber names, the event as handed over or None) of the job running in this context.
_DEFERRED: ContextVar[list[tuple[uuid.UUID, list[str], Event | None]] | None] = ContextVar(
    "deferred_deliveries", default=None
)


@contextmanager
def deliveries_after_job() -> Iterator[None]:
    """Run, on leaving, the fan-out of the events the job's commits handed over meanwhile.

    The job runner wraps each run in it, so a booking's event reaches its subscribers (each in its
    own unit of work, with its own receipt) in the booking's own Celery task, after the job's
    terminal state is committed and reported: no second message, publish and Celery round trip per
    booking. The guarantees are those of a fan-out message: the events are marked handed over
    first, so if the worker dies before or during this, the relay's sweep sends each subscriber
    still without a receipt its ``events.deliver``; a subscriber that fails here is sent its own
    ``events.deliver`` at once (``RETRY_ALONE_AFTER_SECONDS``), which retries with backoff.

    Only on a worker that serves the ``system`` queue itself (where the fan-out message would go):
    a worker deployed for other queues only (``-Q interactive``, say) sends the message as before,
    so the work stays with the workers deployed for it.
    """
    if not _serves_system_queue():
        yield
        return
    deferred: list[tuple[uuid.UUID, list[str], Event | None]] = []
    token = _DEFERRED.set(deferred)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
        if deferred:
            _deliver_now(deferred)


def _serves_system_queue() -> bool:
    """Whether this process consumes the ``system`` queue (every queue unless ``-Q`` chose others)."""
    from app.jobs.types import SYSTEM  # late: app.jobs imports app.events

    return SYSTEM in current_app.extensions["celery"].amqp.queues.consume_from


def _deliver_now(deferred: list[tuple[uuid.UUID, list[str], Event | None]]) -> None:
    celery, registry = current_app.extensions["celery"], current_event_bus().registry
    for event_id, names, event in deferred:
        for name in fan_out(event_id, names, registry, event=event):
            # Not sent: the relay's sweep sends it once the grace period has passed.
            send(celery, name, event_id, countdown=RETRY_ALONE_AFTER_SECONDS)


def _send(celery: Any, task: str, args: list[Any], countdown: float | None = None) -> bool:
    from app.jobs.broker import PUBLISH_RETRY_POLICY  # late: app.jobs imports app.events

    try:
        celery.send_task(
            task,
            args=args,
            countdown=countdown,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
            # Names and ids: shown as they are instead of paying for a safe repr.
            argsrepr=repr(args),
            kwargsrepr="{}",
        )
        return True
    except Exception:
        log.warning("event delivery publish failed", extra={"task": task}, exc_info=True)
        return False


def send(celery: Any, subscriber: str, event_id: uuid.UUID, *, countdown: float | None = None) -> bool:
    """Publish one subscriber's delivery message (``events.deliver``); False when the broker refused it."""
    return _send(celery, DELIVER_TASK, [subscriber, str(event_id)], countdown)


def send_fan_out(celery: Any, event_id: uuid.UUID, subscribers: list[str]) -> bool:
    """Publish the event's one ``events.fan_out`` message; False when the broker refused it."""
    return _send(celery, FAN_OUT_TASK, [str(event_id), subscribers])


def fan_out(
    event_id: uuid.UUID, subscribers: Iterable[str], registry: Registry = REGISTRY, *, event: Event | None = None
) -> list[str]:
    """Deliver the event to each named subscriber, each in its own unit of work (``deliver``).

    Returns the names of the subscribers whose delivery raised (their effect and receipt rolled
    back together; the caller sends each its own ``events.deliver``). A duplicate fan-out finds
    the receipts and does nothing.
    """
    failed = []
    for name in subscribers:
        try:
            deliver(name, event_id, registry, event=event)
        except Exception:
            log.warning(
                "durable subscriber failed; retried alone",
                extra={"subscriber": name, "event_id": str(event_id)},
                exc_info=True,
            )
            failed.append(name)
    return failed


def deliver(name: str, event_id: uuid.UUID, registry: Registry = REGISTRY, *, event: Event | None = None) -> bool:
    """Run subscriber ``name`` on the event with its receipt, in one unit of work; False: nothing to do.

    Nothing to do: the receipt exists (a duplicate delivery), the event is gone (purged), or no
    subscriber of that name is registered in this process (logged: a deploy without it).
    """
    sub = registry.get(name)
    if sub is None:
        log.warning("delivery for an unknown subscriber dropped", extra={"subscriber": name})
        return False
    with unit_of_work():
        if event is None:  # else the event as its hand-over returned it, a moment ago (transient)
            event = db.session.get(Event, event_id)
        if event is None or not sub.wants(event.type):
            return False
        inserted = db.session.execute(_INSERT_RECEIPT, {"subscriber": name, "event_id": event_id}).first()
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
