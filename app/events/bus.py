"""EventBus protocol with Redis pub/sub and in-memory implementations."""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from typing import Protocol

import redis
from flask import current_app


class Subscription(Protocol):
    def wait(self, timeout: float) -> str | None:
        """Block until a message arrives or ``timeout`` seconds pass; return it or None."""

    def close(self) -> None: ...


class EventBus(Protocol):
    def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> Subscription: ...


class _RedisSubscription:
    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)

    def wait(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            message = self._pubsub.get_message(timeout=remaining)
            if message and message.get("type") == "message":
                data = message["data"]
                return data.decode() if isinstance(data, bytes) else str(data)

    def close(self) -> None:
        self._pubsub.close()


class RedisEventBus:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def publish(self, channel: str, message: str) -> None:
        self._client.publish(channel, message)

    def subscribe(self, channel: str) -> Subscription:
        return _RedisSubscription(self._client, channel)


class _MemorySubscription:
    def __init__(self, bus: InMemoryEventBus, channel: str) -> None:
        self._bus = bus
        self._channel = channel
        self.queue: queue.Queue[str] = queue.Queue()

    def wait(self, timeout: float) -> str | None:
        try:
            return self.queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None

    def close(self) -> None:
        self._bus._drop(self._channel, self)


class InMemoryEventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[_MemorySubscription]] = defaultdict(list)

    def publish(self, channel: str, message: str) -> None:
        with self._lock:
            targets = list(self._subscribers.get(channel, ()))
        for subscription in targets:
            subscription.queue.put(message)

    def subscribe(self, channel: str) -> Subscription:
        subscription = _MemorySubscription(self, channel)
        with self._lock:
            self._subscribers[channel].append(subscription)
        return subscription

    def _drop(self, channel: str, subscription: _MemorySubscription) -> None:
        with self._lock:
            if subscription in self._subscribers.get(channel, []):
                self._subscribers[channel].remove(subscription)


def current_bus() -> EventBus:
    return current_app.extensions["estacionate.events"]
