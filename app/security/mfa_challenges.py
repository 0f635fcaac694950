"""The short-lived step between password and second factor.

Login of an MFA user (or of a user who must enroll) creates a challenge in Redis and hands out
an ``mfa_token`` naming it. The challenge has one purpose (``mfa`` to verify a code, or
``mfa_enroll`` to enroll and confirm), expires with the token, and is consumed by the first
success, so an mfa_token works once.

A code is checked only after an attempt was reserved on the challenge (``reserve``, one Lua
script): the script refuses while the account is locked, and counts the attempt before anything
is checked, so 30 concurrent verifies on one token check at most ``max_attempts`` codes; the
attempt after the last allowed one destroys the challenge, and so does the last allowed one
when it fails. (Wrong codes are also counted per account, across tokens: ``app.security.lockout``.)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis
from flask import current_app

from app.security.lockout import AccountLocked, seconds_left

EXTENSION_KEY = "estacionate.mfa_challenges"
CHALLENGE_KEY = "mfa-challenge:{cid}"

# KEYS challenge, the account's lock; ARGV user id, purpose, max attempts. Returns 0 (reserved),
# -1 (no such live challenge for this user and purpose, or its attempts are spent: it is destroyed)
# or the lock's milliseconds left. Never resurrects an expired challenge (HINCRBY would, without a TTL).
_RESERVE = """
local owner = redis.call('HMGET', KEYS[1], 'user_id', 'purpose')
if not owner[1] or owner[1] ~= ARGV[1] or owner[2] ~= ARGV[2] then return -1 end
local locked = redis.call('PTTL', KEYS[2])
if locked > 0 then return locked end
if redis.call('HINCRBY', KEYS[1], 'attempts', 1) > tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return -1
end
return 0
"""

# After a wrong code: destroy the challenge once its last allowed attempt failed. 1 when it is gone.
_FAIL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

VERIFY = "mfa"
ENROLL = "mfa_enroll"


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    user_id: str
    purpose: str


class ChallengeGone(Exception):
    """The challenge expired, was used, belongs to someone else, or has no attempt left."""


class ChallengeStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int, max_attempts: int) -> None:
        self._redis = client
        self.ttl_seconds = ttl_seconds
        self.max_attempts = max_attempts
        self._fail = client.register_script(_FAIL)
        self._reserve = client.register_script(_RESERVE)

    def create(self, user_id: str, purpose: str) -> Challenge:
        challenge = Challenge(secrets.token_urlsafe(24), user_id, purpose)
        key = CHALLENGE_KEY.format(cid=challenge.challenge_id)
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping={"user_id": user_id, "purpose": purpose, "attempts": 0})
        pipe.expire(key, self.ttl_seconds)
        pipe.execute()
        return challenge

    def get(self, challenge_id: str, user_id: str, purpose: str) -> Challenge | None:
        raw = self._redis.hgetall(CHALLENGE_KEY.format(cid=challenge_id))
        if not raw:
            return None
        data = {k.decode(): v.decode() for k, v in raw.items()}
        if data.get("user_id") != user_id or data.get("purpose") != purpose:
            return None
        return Challenge(challenge_id, user_id, purpose)

    def reserve(self, challenge: Challenge, lock_key: str) -> None:
        """Take one attempt on the challenge before checking a code; ``ChallengeGone`` / ``AccountLocked``."""
        answer = int(
            self._reserve(
                keys=[CHALLENGE_KEY.format(cid=challenge.challenge_id), lock_key],
                args=[challenge.user_id, challenge.purpose, self.max_attempts],
            )
        )
        if answer < 0:
            raise ChallengeGone(challenge.challenge_id)
        if answer > 0:
            raise AccountLocked(seconds_left(answer))

    def record_failure(self, challenge_id: str) -> bool:
        """After a wrong code on a reserved attempt: True if the challenge is now destroyed."""
        return bool(self._fail(keys=[CHALLENGE_KEY.format(cid=challenge_id)], args=[self.max_attempts]))

    def consume(self, challenge_id: str) -> bool:
        """Delete the challenge; True for the one caller that consumed it."""
        return bool(self._redis.delete(CHALLENGE_KEY.format(cid=challenge_id)))


def current_challenges() -> ChallengeStore:
    return current_app.extensions[EXTENSION_KEY]
