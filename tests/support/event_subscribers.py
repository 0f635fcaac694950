"""Durable subscribers for the event-bus contract tests: their effect is an audit row per event.

``register(registry)`` adds them to a registry (a test's own, for the in-process bus); the
worker of the Celery variant loads them into the process registry through
``tests/support/event_worker.py``. The effect is written in the delivery's unit of work, so it
commits with the receipt or not at all: counting effect rows per event proves exactly-once.
"""

from __future__ import annotations

from app.events.subscribers import REGISTRY, Registry
from app.models import Event
from app.services import audit

#: (name, types) of the contract subscribers.
SUBSCRIBERS = {"contract-bookings": ["booking.cancelled"], "contract-all": ["*"]}
EFFECT = "event_contract.effect"


def _effect(name: str):
    def handle(event: Event) -> None:
        audit.record(EFFECT, audit.Actor.system(), entity_type=name, entity_id=event.id)

    handle.__name__ = f"handle_{name.replace('-', '_')}"
    return handle


HANDLERS = {name: _effect(name) for name in SUBSCRIBERS}


def register(registry: Registry = REGISTRY) -> Registry:
    for name, types in SUBSCRIBERS.items():
        registry.add(name, types, HANDLERS[name])
    return registry
