"""The durable subscribers' registry: adding a subscriber is registering one function.

A durable subscriber is a function ``handler(event: Event) -> None`` that has an effect
(notifications, operator webhooks...). It is registered once, at import time, in a module under
``app/subscribers/`` (imported by ``create_app``), with the event types it wants::

    @subscriber("webhooks", types=["booking.confirmed", "booking.cancelled"])  # or types=["*"]
    def deliver(event: Event) -> None: ...

The bus runs it after the event's commit, in a unit of work of its own (``current_unit_of_work()``
is open inside the handler: the handler only adds to the session) that also inserts the receipt
``(name, event.id)``; a duplicate delivery finds the receipt and does nothing. A handler that
raises rolls back its effect and its receipt together, and the event is delivered again later.
The emitter never knows who listens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domain.events import EVENT_TYPES

if TYPE_CHECKING:
    from app.models import Event

Handler = Callable[["Event"], None]
ALL = "*"


@dataclass(frozen=True)
class Subscriber:
    name: str
    types: frozenset[str]
    handler: Handler

    def wants(self, event_type: str) -> bool:
        return ALL in self.types or event_type in self.types


class Registry:
    """Name -> subscriber; names are the receipts' ``subscriber`` column, so they never change."""

    def __init__(self) -> None:
        self._by_name: dict[str, Subscriber] = {}

    def add(self, name: str, types: Iterable[str], handler: Handler) -> Subscriber:
        wanted = frozenset(types)
        unknown = wanted - EVENT_TYPES - {ALL}
        if unknown:
            raise ValueError(f"subscriber {name!r}: unknown event types {sorted(unknown)}")
        if not wanted:
            raise ValueError(f"subscriber {name!r} wants no event type")
        existing = self._by_name.get(name)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"a subscriber named {name!r} is already registered")
        sub = Subscriber(name, wanted, handler)
        self._by_name[name] = sub
        return sub

    def remove(self, name: str) -> None:
        self._by_name.pop(name, None)

    def get(self, name: str) -> Subscriber | None:
        return self._by_name.get(name)

    def for_type(self, event_type: str) -> list[Subscriber]:
        return [s for s in self._by_name.values() if s.wants(event_type)]

    def all(self) -> list[Subscriber]:
        return list(self._by_name.values())


#: The process's registry (subscribers register at import time, before any app exists).
REGISTRY = Registry()


def subscriber(name: str, *, types: Iterable[str]) -> Callable[[Handler], Handler]:
    """Register the decorated function as the durable subscriber ``name`` for ``types``."""

    def register(handler: Handler) -> Handler:
        REGISTRY.add(name, types, handler)
        return handler

    return register
