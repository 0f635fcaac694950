"""Caps on concurrent long-polls, so waiting requests can never take every API thread.

``GET /v1/jobs/{id}?wait=N`` holds a gunicorn thread for up to 30 s. Without a cap one user with
32 such requests takes all the threads of two processes, and ``/healthz`` stops answering (issue 10,
item 7). A long-poll must therefore hold two slots while it waits:

- a **process slot**: a local counter, at most ``max_per_process`` (default: half of
  ``WEB_THREADS``), so the other half of the threads always serves everything else;
- a **user slot**: at most ``max_per_user`` waits of one user across all processes, counted in
  Redis. The user's slots are a sorted set ``longpoll:<user id>`` whose members expire with their
  wait (score: the moment the wait ends plus ``grace_seconds``), so a process killed mid-wait
  leaks nothing for longer than that.

A long-poll that gets either slot waits; one that does not answers at once with the job's current
document, exactly like ``?wait=0`` (200, not an error: polling again is the client's choice).

Cost: taking the user slot is one round trip (a Lua script: drop expired members, count, add),
giving it back one more (``ZREM``). Nothing else in a request changes, and a long-poll whose job
is already finished takes no slot at all.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

import redis
from flask import current_app

log = logging.getLogger(__name__)

EXTENSION_KEY = "estacionate.longpolls"
KEY_PREFIX = "longpoll:"

#: A slot outlives its wait by this much: enough for the request to finish normally.
GRACE_SECONDS = 10.0

# KEYS[1]: the user's slots. ARGV: cap, slot id, lifetime in ms. Returns 1 if the slot was taken.
# TIME is the server's clock, so every process agrees on what has expired.
TAKE_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local lifetime = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now_ms + lifetime, ARGV[2])
if redis.call('PTTL', KEYS[1]) < lifetime then
  redis.call('PEXPIRE', KEYS[1], lifetime)
end
return 1
"""


@dataclass(frozen=True)
class Slot:
    key: str
    member: str


class LongPolls:
    """The two caps of one API process (see the module doc)."""

    def __init__(
        self, client: redis.Redis, max_per_user: int, max_per_process: int, *, grace_seconds: float = GRACE_SECONDS
    ) -> None:
        self._client = client
        self._take = client.register_script(TAKE_SCRIPT)
        self.max_per_user = max_per_user
        self.max_per_process = max_per_process
        self._grace_ms = int(grace_seconds * 1000)
        self._lock = threading.Lock()
        self._in_process = 0

    def take(self, user_id: uuid.UUID | str, wait_seconds: float) -> Slot | None:
        """Both slots for a wait of ``wait_seconds``, or None (and nothing held) when a cap is reached."""
        with self._lock:
            if self._in_process >= self.max_per_process:
                return None
            self._in_process += 1
        try:
            slot = Slot(f"{KEY_PREFIX}{user_id}", uuid.uuid4().hex)
            lifetime_ms = int(wait_seconds * 1000) + self._grace_ms
            if self.max_per_user > 0 and self._take(
                keys=[slot.key], args=[self.max_per_user, slot.member, lifetime_ms]
            ):
                return slot
        except BaseException:
            self._leave_process()
            raise
        self._leave_process()
        return None

    def give_back(self, slot: Slot) -> None:
        """Release both slots. If Redis is unreachable the user slot expires by itself."""
        self._leave_process()
        try:
            self._client.zrem(slot.key, slot.member)
        except redis.RedisError:
            log.warning("could not give a long-poll slot back; it expires with its wait", exc_info=False)

    def _leave_process(self) -> None:
        with self._lock:
            self._in_process -= 1


def current_longpolls() -> LongPolls:
    return current_app.extensions[EXTENSION_KEY]
