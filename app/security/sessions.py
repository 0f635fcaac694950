"""Server-side sessions in Redis; the access token only names one.

``sess:<sid>`` is a hash (user, created/last-seen, IP, user agent, absolute expiry, and ``mfa``:
whether the login that opened it gave a second factor) whose TTL is the idle timeout and slides
on every request; ``user-sessions:<user>`` is a sorted set of the
user's session ids by creation time. Deleting the hash revokes the session immediately: the next
request with its token answers 401. Creating a session beyond the per-user maximum evicts the
oldest ones in the same atomic step (a Lua script), so the cap holds under concurrent logins.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis
from flask import current_app

SESSION_PREFIX = "sess:"
SESSION_KEY = SESSION_PREFIX + "{sid}"
USER_SESSIONS_KEY = "user-sessions:{user_id}"
EXTENSION_KEY = "estacionate.sessions"

# KEYS[1] session hash, KEYS[2] user index; ARGV: sid, score, ttl, max, prefix, index ttl, then field/value pairs.
_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[1], ARGV[3])
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[5] .. sid) == 0 then redis.call('ZREM', KEYS[2], sid) end
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[6])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
local evicted = {}
if excess > 0 then
  evicted = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for _, sid in ipairs(evicted) do
    redis.call('DEL', ARGV[5] .. sid)
    redis.call('ZREM', KEYS[2], sid)
  end
end
return evicted
"""


# KEYS[1] session hash; ARGV: now, idle seconds. Slides a live session, in one round trip, and never
# resurrects a deleted one (HSET on a missing key would). Returns every field, ``mfa`` included, so
# the request learns whether the session gave a second factor without another round trip.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local absolute = tonumber(redis.call('HGET', KEYS[1], 'absolute_expires_at'))
local now = tonumber(ARGV[1])
if absolute == nil or absolute <= now then return {} end
redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1])
redis.call('EXPIRE', KEYS[1], math.max(1, math.floor(math.min(tonumber(ARGV[2]), absolute - now))))
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True)
class Session:
    session_id: str
    user_id: str
    created_at: float
    last_seen_at: float
    absolute_expires_at: float
    ip: str | None
    user_agent: str | None
    #: The login that opened it gave a second factor (TOTP or recovery code, or a first code at enrollment).
    mfa: bool = False


def _decode(session_id: str, raw: dict[bytes, bytes]) -> Session:
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return Session(
        session_id=session_id,
        user_id=data["user_id"],
        created_at=float(data["created_at"]),
        last_seen_at=float(data["last_seen_at"]),
        absolute_expires_at=float(data["absolute_expires_at"]),
        ip=data.get("ip") or None,
        user_agent=data.get("user_agent") or None,
        mfa=data.get("mfa") == "1",
    )


class SessionStore:
    def __init__(self, client: redis.Redis, idle_seconds: int, absolute_seconds: int, max_per_user: int) -> None:
        self._redis = client
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self.max_per_user = max_per_user
        self._create = client.register_script(_CREATE)
        self._touch = client.register_script(_TOUCH)

    def create(
        self, user_id: str, ip: str | None, user_agent: str | None, *, mfa: bool = False
    ) -> tuple[Session, list[str]]:
        """Open a session; return it and the ids of the sessions evicted to respect the cap."""
        now = time.time()
        session = Session(
            session_id=secrets.token_urlsafe(24),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            absolute_expires_at=now + self.absolute_seconds,
            ip=ip,
            user_agent=(user_agent or "")[:256] or None,
            mfa=mfa,
        )
        fields = {
            "user_id": user_id,
            "created_at": repr(now),
            "last_seen_at": repr(now),
            "absolute_expires_at": repr(session.absolute_expires_at),
            "ip": ip or "",
            "user_agent": session.user_agent or "",
            "mfa": "1" if mfa else "0",
        }
        flat = [item for pair in fields.items() for item in pair]
        evicted = self._create(
            keys=[SESSION_KEY.format(sid=session.session_id), USER_SESSIONS_KEY.format(user_id=user_id)],
            args=[
                session.session_id,
                repr(now),
                self._ttl(now, session.absolute_expires_at),
                self.max_per_user,
                SESSION_PREFIX,
                self.absolute_seconds,
                *flat,
            ],
        )
        return session, [sid.decode() if isinstance(sid, bytes) else sid for sid in evicted]

    def touch(self, session_id: str, user_id: str) -> Session | None:
        """Return the live session (sliding its idle timeout) or None if revoked or expired."""
        flat = self._touch(keys=[SESSION_KEY.format(sid=session_id)], args=[repr(time.time()), self.idle_seconds])
        if not flat:
            return None
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        session = _decode(session_id, raw)
        return session if session.user_id == user_id else None

    def list_for_user(self, user_id: str) -> list[Session]:
        session_ids = [sid.decode() for sid in self._redis.zrange(USER_SESSIONS_KEY.format(user_id=user_id), 0, -1)]
        pipe = self._redis.pipeline()
        for sid in session_ids:
            pipe.hgetall(SESSION_KEY.format(sid=sid))
        live = []
        for sid, raw in zip(session_ids, pipe.execute(), strict=True):
            if raw:
                session = _decode(sid, raw)
                if session.user_id == user_id and session.absolute_expires_at > time.time():
                    live.append(session)
        return live

    def revoke(self, session_id: str, user_id: str) -> bool:
        """End one session of this user; False if it was not theirs or already gone."""
        key = SESSION_KEY.format(sid=session_id)
        owner = self._redis.hget(key, "user_id")
        if owner is None or owner.decode() != user_id:
            return False
        pipe = self._redis.pipeline()
        pipe.delete(key)
        pipe.zrem(USER_SESSIONS_KEY.format(user_id=user_id), session_id)
        deleted, _ = pipe.execute()
        return bool(deleted)

    def revoke_all(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """End every session of the user (but ``keep``); return the ids that were ended."""
        index = USER_SESSIONS_KEY.format(user_id=user_id)
        session_ids = [sid.decode() for sid in self._redis.zrange(index, 0, -1) if sid.decode() != keep]
        if not session_ids:
            return []
        pipe = self._redis.pipeline()
        for sid in session_ids:
            pipe.delete(SESSION_KEY.format(sid=sid))
        pipe.zrem(index, *session_ids)
        results = pipe.execute()
        return [sid for sid, deleted in zip(session_ids, results[:-1], strict=True) if deleted]

    def _ttl(self, now: float, absolute_expires_at: float) -> int:
        return max(1, int(min(self.idle_seconds, absolute_expires_at - now)))


def current_sessions() -> SessionStore:
    return current_app.extensions[EXTENSION_KEY]
