"""Events: the domain-event outbox and bus (``record``, ``subscriber``) and the wake-up bus.

- ``record(type, ...)`` (app/events/record.py) adds a domain event to the current unit of work;
  it is handed to the ``DomainEventBus`` (app/events/dispatch.py) after commit, and the relay
  (app/events/relay.py) hands over whatever that missed.
- ``@subscriber(name, types=[...])`` (app/events/subscribers.py) registers a durable subscriber.
- ``RedisEventBus`` / ``InMemoryEventBus`` (app/events/bus.py) carry small wake-ups
  (``job.finished``) and live event documents over pub/sub: hints, never the data itself;
  readers always re-read Postgres, so a lost wake-up costs latency, never correctness.
"""

from app.events.bus import EventBus, InMemoryEventBus, RedisEventBus, Subscription, current_bus

# ``record`` is the function: it shadows its module's name on purpose.
from app.events.record import record
from app.events.subscribers import REGISTRY, Subscriber, subscriber

__all__ = [
    "REGISTRY",
    "EventBus",
    "InMemoryEventBus",
    "RedisEventBus",
    "Subscriber",
    "Subscription",
    "current_bus",
    "record",
    "subscriber",
]
