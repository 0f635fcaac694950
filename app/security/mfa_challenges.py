"""The short-lived step between password and second factor.

Login of an MFA user (or of a user who must enroll) creates a challenge in Redis and hands out
an ``mfa_token`` naming it. The challenge has one purpose (``mfa`` to verify a code, or
``mfa_enroll`` to enroll and confirm), expires with the token, counts wrong codes (the fifth
destroys it) and is consumed by the first success, so an mfa_token works once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis
from flask import current_app

EXTENSION_KEY = "estacionate.mfa_challenges"
CHALLENGE_KEY = "mfa-challenge:{cid}"

# Count a failure only on a live challenge (never resurrect an expired one without a TTL);
# destroy it at the limit. Returns 1 when the challenge is gone.
_FAIL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
if redis.call('HINCRBY', KEYS[1], 'failures', 1) >= tonumber(ARGV[1]) then
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


class ChallengeStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int, max_attempts: int) -> None:
        self._redis = client
        self.ttl_seconds = ttl_seconds
        self.max_attempts = max_attempts
        self._fail = client.register_script(_FAIL)

    def create(self, user_id: str, purpose: str) -> Challenge:
        challenge = Challenge(secrets.token_urlsafe(24), user_id, purpose)
        key = CHALLENGE_KEY.format(cid=challenge.challenge_id)
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping={"user_id": user_id, "purpose": purpose, "failures": 0})
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

    def record_failure(self, challenge_id: str) -> bool:
        """Count a wrong code; True if the challenge is now destroyed."""
        return bool(self._fail(keys=[CHALLENGE_KEY.format(cid=challenge_id)], args=[self.max_attempts]))

    def consume(self, challenge_id: str) -> bool:
        """Delete the challenge; True for the one caller that consumed it."""
        return bool(self._redis.delete(CHALLENGE_KEY.format(cid=challenge_id)))


def current_challenges() -> ChallengeStore:
    return current_app.extensions[EXTENSION_KEY]
