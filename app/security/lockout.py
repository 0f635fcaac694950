"""Per-account brute-force guard, in Redis.

Keyed by the blind index of the submitted e-mail (never the address), so unknown addresses lock
exactly like real ones and a lockout reveals nothing about who has an account. After
``threshold`` consecutive failures the account is locked for ``base`` seconds, doubling with
each further failure up to ``maximum``; while locked, even the right password is refused. A
success resets the count; the count itself forgets after a day without failures.
"""

from __future__ import annotations

import redis
from flask import current_app

EXTENSION_KEY = "estacionate.lockout"
FAILURES_KEY = "login-failures:{account}"
LOCK_KEY = "login-lock:{account}"
FAILURE_MEMORY_SECONDS = 24 * 3600


class LoginGuard:
    def __init__(self, client: redis.Redis, threshold: int, base_seconds: int, max_seconds: int) -> None:
        self._redis = client
        self.threshold = threshold
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds

    def retry_after(self, account: str) -> int | None:
        """Seconds left on the account's lock, or None if it is not locked."""
        ttl = self._redis.pttl(LOCK_KEY.format(account=account))
        if ttl is None or ttl <= 0:
            return None
        return max(1, -(-ttl // 1000))

    def record_failure(self, account: str) -> int | None:
        """Count a failure; return the lock duration if this failure locks the account."""
        key = FAILURES_KEY.format(account=account)
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, FAILURE_MEMORY_SECONDS)
        failures, _ = pipe.execute()
        if failures < self.threshold:
            return None
        delay = min(self.base_seconds * 2 ** (failures - self.threshold), self.max_seconds)
        self._redis.set(LOCK_KEY.format(account=account), "1", ex=delay)
        return delay

    def reset(self, account: str) -> None:
        self._redis.delete(FAILURES_KEY.format(account=account), LOCK_KEY.format(account=account))


def current_guard() -> LoginGuard:
    return current_app.extensions[EXTENSION_KEY]
