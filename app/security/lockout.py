"""Per-account brute-force guard, in Redis: password attempts are reserved before they are checked.

Keyed by the blind index of the e-mail (never the address), so unknown addresses lock exactly
like real ones and a lockout reveals nothing about who has an account. Per account:

- ``login-lock:{a}``: the lock, a key whose TTL is what is left of it. While it exists every
  password attempt (login, password change) and every second-factor attempt is refused with
  ``account-locked`` before anything is checked, even the right password or code.
- ``login-failures:{a}``: wrong passwords. From the ``threshold``-th on, each failure locks the
  account for ``base`` seconds, doubling with each further failure up to ``maximum``. It forgets
  a day after the last failure.
- ``mfa-failures:{a}``: wrong second-factor codes, counted per account across every ``mfa_token``
  (a new login does not start a new budget). From the ``mfa_threshold``-th on, each one locks the
  account the same way. It forgets an hour after the last failure.
- ``login-in-flight:{a}``: password checks in progress (a sorted set of attempt ids by deadline).

Only a completed login (password, and the second factor where one is owed) resets the counts
and lifts the lock; a right password alone does not, or "password, then five wrong codes" could
be repeated forever.

Reserve before checking: argon2 takes tens of milliseconds, so counting a failure only after
the check let 32 concurrent wrong passwords all be checked before the first was counted. An
attempt is admitted (one Lua script, atomic) only when the account is not locked and
``failures + in_flight < threshold``, or when nothing is in flight (so, once the threshold is
reached, the attempts allowed between locks are checked one at a time); anything else is refused
like a lock, with ``Retry-After: 1``. So however many arrive at once, at most ``threshold``
passwords are checked before the lock. An admitted attempt ends with ``failed()`` (counts the
failure, may lock, in the same script) or ``release()``; each reservation has its own deadline,
so a process that crashes mid-check cannot wedge an account.
"""

from __future__ import annotations

import secrets
import time
from types import TracebackType

import redis
from flask import current_app

EXTENSION_KEY = "estacionate.lockout"
FAILURES_KEY = "login-failures:{account}"
MFA_FAILURES_KEY = "mfa-failures:{account}"
LOCK_KEY = "login-lock:{account}"
IN_FLIGHT_KEY = "login-in-flight:{account}"
FAILURE_MEMORY_SECONDS = 24 * 3600
MFA_FAILURE_MEMORY_SECONDS = 3600
#: How long a reservation holds if its process never ends it: far above any password check.
ATTEMPT_DEADLINE_MS = 30_000
#: What a refused attempt is told when the account is not locked but its attempts are all in flight.
BUSY_RETRY_SECONDS = 1

# Lock for ARGV[base] * 2^(count - threshold) seconds, capped; never shorten a longer lock.
_LOCK = """
local function lock(key, count, threshold, base, maximum)
  if count < threshold then return 0 end
  local delay = math.floor(math.min(base * 2 ^ (count - threshold), maximum))
  if redis.call('PTTL', key) < delay * 1000 then redis.call('SET', key, '1', 'EX', delay) end
  return delay
end
"""

# KEYS lock, failures, in-flight; ARGV threshold, attempt id, now (ms), deadline (ms).
# Returns 0 (admitted), the lock's milliseconds left (> 0), or -1 (the allowed attempts are in flight).
_ADMIT = """
local locked = redis.call('PTTL', KEYS[1])
if locked > 0 then return locked end
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local in_flight = redis.call('ZCARD', KEYS[3])
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if in_flight > 0 and failures + in_flight >= tonumber(ARGV[1]) then return -1 end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 0
"""

# KEYS lock, failures, in-flight; ARGV attempt id, threshold, base, maximum, memory. Returns the lock (s) or 0.
_FAIL = (
    _LOCK
    + """
redis.call('ZREM', KEYS[3], ARGV[1])
local count = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return lock(KEYS[1], count, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)

# KEYS lock, mfa failures; ARGV threshold, base, maximum, memory. Returns the lock (s) or 0.
_MFA_FAIL = (
    _LOCK
    + """
local count = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return lock(KEYS[1], count, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)


class AccountLocked(Exception):
    """The account refuses attempts for ``seconds`` more (at least 1)."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"locked for {seconds}s")
        self.seconds = seconds


def lock_key(account: str) -> str:
    return LOCK_KEY.format(account=account)


def seconds_left(milliseconds: int) -> int:
    return max(1, -(-int(milliseconds) // 1000))


class Attempt:
    """One admitted password check; end it with ``failed()`` or ``release()`` (or leave the ``with``)."""

    def __init__(self, guard: LoginGuard, account: str, attempt_id: str) -> None:
        self._guard = guard
        self.account = account
        self.attempt_id = attempt_id
        self._open = True

    def failed(self) -> int | None:
        """Count the wrong password; the lock's seconds if this failure locks the account."""
        self._open = False
        return self._guard._record_failure(self)

    def release(self) -> None:
        """End the attempt without a failure (right password, or nothing was checked)."""
        if self._open:
            self._open = False
            self._guard._release(self)

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()


class LoginGuard:
    def __init__(
        self,
        client: redis.Redis,
        threshold: int,
        base_seconds: int,
        max_seconds: int,
        mfa_threshold: int = 10,
    ) -> None:
        self._redis = client
        self.threshold = threshold
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.mfa_threshold = mfa_threshold
        self._admit = client.register_script(_ADMIT)
        self._fail = client.register_script(_FAIL)
        self._mfa_fail = client.register_script(_MFA_FAIL)

    def _keys(self, account: str) -> list[str]:
        return [
            lock_key(account),
            FAILURES_KEY.format(account=account),
            IN_FLIGHT_KEY.format(account=account),
        ]

    def attempt(self, account: str) -> Attempt:
        """Reserve a password check; ``AccountLocked`` if the account refuses one now."""
        attempt_id = secrets.token_hex(8)
        answer = int(
            self._admit(
                keys=self._keys(account),
                args=[self.threshold, attempt_id, int(time.time() * 1000), ATTEMPT_DEADLINE_MS],
            )
        )
        if answer > 0:
            raise AccountLocked(seconds_left(answer))
        if answer < 0:
            raise AccountLocked(BUSY_RETRY_SECONDS)
        return Attempt(self, account, attempt_id)

    def _record_failure(self, attempt: Attempt) -> int | None:
        delay = int(
            self._fail(
                keys=self._keys(attempt.account),
                args=[attempt.attempt_id, self.threshold, self.base_seconds, self.max_seconds, FAILURE_MEMORY_SECONDS],
            )
        )
        return delay or None

    def _release(self, attempt: Attempt) -> None:
        self._redis.zrem(IN_FLIGHT_KEY.format(account=attempt.account), attempt.attempt_id)

    def record_mfa_failure(self, account: str) -> int | None:
        """Count a wrong second-factor code; the lock's seconds if this failure locks the account."""
        delay = int(
            self._mfa_fail(
                keys=[lock_key(account), MFA_FAILURES_KEY.format(account=account)],
                args=[self.mfa_threshold, self.base_seconds, self.max_seconds, MFA_FAILURE_MEMORY_SECONDS],
            )
        )
        return delay or None

    def retry_after(self, account: str) -> int | None:
        """Seconds left on the account's lock, or None if it is not locked."""
        ttl = self._redis.pttl(lock_key(account))
        if ttl is None or ttl <= 0:
            return None
        return seconds_left(ttl)

    def login_completed(self, account: str) -> None:
        """A login finished (second factor included): forget the failures and lift any lock."""
        self._redis.delete(
            FAILURES_KEY.format(account=account), MFA_FAILURES_KEY.format(account=account), lock_key(account)
        )


def current_guard() -> LoginGuard:
    return current_app.extensions[EXTENSION_KEY]
