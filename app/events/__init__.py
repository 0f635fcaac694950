"""Event bus: publish small notifications (``job.finished``) and wait for them.

``RedisEventBus`` is used in every running process; ``InMemoryEventBus`` serves unit tests of
code that only needs the protocol. Events are hints ("look again"), never the data itself:
readers always re-read Postgres, so a lost event costs latency, never correctness.
"""

from app.events.bus import EventBus, InMemoryEventBus, RedisEventBus, Subscription, current_bus

__all__ = ["EventBus", "InMemoryEventBus", "RedisEventBus", "Subscription", "current_bus"]
