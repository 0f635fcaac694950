"""Durable subscribers for the event-bus contract tests: their effect is an audit row per event.

``register(registry)`` adds them to a registry (a test's own, for the in-process bus); the
worker of the Celery variant loads them into the process registry through
``tests/support/event_worker.py``. The effect is written in the delivery's unit of work, so it
commits with the receipt or not at all: counting effect rows per event proves exactly-once.
"""

from __future__ import annotations

from flask import current_app

from app.events.subscribers import REGISTRY, Registry
from app.models import Event
from app.runtime import REDIS_KEY
from app.services import audit

#: (name, types) of the contract subscribers. ``contract-flaky`` fails its first delivery of each
#: event (counted in Redis, which a failed delivery does not roll back) and succeeds after that.
SUBSCRIBERS = {"contract-bookings": ["booking.cancelled"], "contract-all": ["*"], "contract-flaky": ["user.unbanned"]}
EFFECT = "event_contract.effect"
FLAKY = "contract-flaky"


def _effect(name: str):
    def handle(event: Event) -> None:
        audit.record(EFFECT, audit.Actor.system(), entity_type=name, entity_id=event.id)

    handle.__name__ = f"handle_{name.replace('-', '_')}"
    return handle


def _flaky(event: Event) -> None:
    tries = current_app.extensions[REDIS_KEY].incr(f"contract-flaky:{event.id}")
    if tries == 1:
        raise RuntimeError("contract-flaky fails its first delivery")
    audit.record(EFFECT, audit.Actor.system(), entity_type=FLAKY, entity_id=event.id)


HANDLERS = {name: _effect(name) for name in SUBSCRIBERS if name != FLAKY} | {FLAKY: _flaky}


def register(registry: Registry = REGISTRY) -> Registry:
    for name, types in SUBSCRIBERS.items():
        registry.add(name, types, HANDLERS[name])
    return registry
