"""EventBus protocol with Redis pub/sub and in-memory implementations."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import defaultdict
from typing import Protocol

import redis
from flask import current_app

log = logging.getLogger(__name__)


class Subscription(Protocol):
    def wait(self, timeout: float) -> str | None:
        """Block until a message arrives or ``timeout`` seconds pass; return it or None."""

    def close(self) -> None: ...


class EventBus(Protocol):
    def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> Subscription: ...


class _Mailbox:
    """What one waiter receives: a queue the process's listener thread fills."""

    def __init__(self, owner: _Waiters, channel: str) -> None:
        self._owner = owner
        self.channel = channel
        self.queue: queue.Queue[str] = queue.Queue()

    def wait(self, timeout: float) -> str | None:
        try:
            return self.queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None

    def close(self) -> None:
        self._owner.drop(self)


class _Waiters:
    """Channel -> mailboxes, shared by the threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_channel: dict[str, list[_Mailbox]] = defaultdict(list)

    def add(self, channel: str) -> _Mailbox:
        mailbox = _Mailbox(self, channel)
        with self._lock:
            self._by_channel[channel].append(mailbox)
        return mailbox

    def drop(self, mailbox: _Mailbox) -> None:
        with self._lock:
            boxes = self._by_channel.get(mailbox.channel)
            if boxes and mailbox in boxes:
                boxes.remove(mailbox)
                if not boxes:
                    del self._by_channel[mailbox.channel]

    def deliver(self, channel: str, message: str) -> None:
        with self._lock:
            boxes = list(self._by_channel.get(channel, ()))
        for mailbox in boxes:
            mailbox.queue.put(message)


class RedisEventBus:
    """Redis pub/sub with ONE listening connection per process, shared by every waiter.

    A connection per waiting request would cost a TCP connect, a SUBSCRIBE and a disconnect
    for every long-poll. Instead a daemon thread pattern-subscribes to the bus's prefixes once and
    hands each message to the mailboxes registered for its channel. If the connection drops the
    thread reconnects; waiters meanwhile time out and re-read Postgres (events are only hints).
    """

    def __init__(
        self, client: redis.Redis, listen_client: redis.Redis | None = None, patterns: tuple[str, ...] = ("job:*",)
    ) -> None:
        """``listen_client`` must have no read timeout: the listener sits idle between events."""
        self._client = client
        self._listen_client = listen_client or client
        self._patterns = patterns
        self._waiters = _Waiters()
        self._listener_pid: int | None = None
        self._start_lock = threading.Lock()

    def publish(self, channel: str, message: str) -> None:
        self._client.publish(channel, message)

    def subscribe(self, channel: str) -> Subscription:
        self._ensure_listener()
        return self._waiters.add(channel)

    def _ensure_listener(self) -> None:
        if self._listener_pid == os.getpid():
            return
        with self._start_lock:
            if self._listener_pid == os.getpid():
                return
            ready = threading.Event()
            thread = threading.Thread(target=self._listen, args=(ready,), name="event-bus-listener", daemon=True)
            thread.start()
            ready.wait(timeout=5)  # subscribed (or failing: waiters then rely on their re-reads)
            self._listener_pid = os.getpid()

    def _listen(self, ready: threading.Event) -> None:
        backoff = 0.1
        while True:
            pubsub = self._listen_client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(*self._patterns)
                ready.set()
                backoff = 0.1
                for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        channel, data = message["channel"], message["data"]
                        self._waiters.deliver(
                            channel.decode() if isinstance(channel, bytes) else str(channel),
                            data.decode() if isinstance(data, bytes) else str(data),
                        )
            except Exception:
                log.warning("event bus listener lost its connection; reconnecting", exc_info=True)
                ready.set()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    pubsub.close()
                except Exception:  # already broken
                    log.debug("closing a broken pubsub failed", exc_info=True)


class InMemoryEventBus:
    def __init__(self) -> None:
        self._waiters = _Waiters()

    def publish(self, channel: str, message: str) -> None:
        self._waiters.deliver(channel, message)

    def subscribe(self, channel: str) -> Subscription:
        return self._waiters.add(channel)


def current_bus() -> EventBus:
    return current_app.extensions["estacionate.events"]
