"""Server-side sessions in Redis; the access token only names one.

``sess:<sid>`` is a hash (user, created/last-seen, IP, user agent, absolute expiry) whose TTL is
the idle timeout and slides on every request; ``user-sessions:<user>`` is a sorted set of the
user's session ids by creation time. Deleting the hash revokes the session immediately: the
next request with its token answers 401.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis

SESSION_KEY = "sess:{sid}"
USER_SESSIONS_KEY = "user-sessions:{user_id}"


@dataclass(frozen=True)
class Session:
    session_id: str
    user_id: str
    created_at: float
    last_seen_at: float
    absolute_expires_at: float
    ip: str | None
    user_agent: str | None


class SessionStore:
    def __init__(self, client: redis.Redis, idle_seconds: int, absolute_seconds: int) -> None:
        self._redis = client
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds

    def create(self, user_id: str, ip: str | None, user_agent: str | None) -> Session:
        now = time.time()
        session = Session(
            session_id=secrets.token_urlsafe(24),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            absolute_expires_at=now + self.absolute_seconds,
            ip=ip,
            user_agent=(user_agent or "")[:256] or None,
        )
        key = SESSION_KEY.format(sid=session.session_id)
        pipe = self._redis.pipeline()
        pipe.hset(
            key,
            mapping={
                "user_id": user_id,
                "created_at": repr(now),
                "last_seen_at": repr(now),
                "absolute_expires_at": repr(session.absolute_expires_at),
                "ip": ip or "",
                "user_agent": session.user_agent or "",
            },
        )
        pipe.expire(key, self._ttl(now, session.absolute_expires_at))
        pipe.zadd(USER_SESSIONS_KEY.format(user_id=user_id), {session.session_id: now})
        pipe.expire(USER_SESSIONS_KEY.format(user_id=user_id), self.absolute_seconds)
        pipe.execute()
        return session

    def touch(self, session_id: str, user_id: str) -> Session | None:
        """Return the live session (sliding its idle timeout) or None if revoked or expired."""
        key = SESSION_KEY.format(sid=session_id)
        now = time.time()
        raw = self._redis.hgetall(key)
        if not raw:
            return None
        data = {k.decode(): v.decode() for k, v in raw.items()}
        absolute = float(data["absolute_expires_at"])
        if data.get("user_id") != user_id or absolute <= now:
            return None
        pipe = self._redis.pipeline()
        pipe.hset(key, "last_seen_at", repr(now))
        pipe.expire(key, self._ttl(now, absolute))
        pipe.execute()
        return Session(
            session_id=session_id,
            user_id=user_id,
            created_at=float(data["created_at"]),
            last_seen_at=now,
            absolute_expires_at=absolute,
            ip=data.get("ip") or None,
            user_agent=data.get("user_agent") or None,
        )

    def revoke(self, session_id: str, user_id: str) -> bool:
        pipe = self._redis.pipeline()
        pipe.delete(SESSION_KEY.format(sid=session_id))
        pipe.zrem(USER_SESSIONS_KEY.format(user_id=user_id), session_id)
        deleted, _ = pipe.execute()
        return bool(deleted)

    def revoke_all(self, user_id: str) -> int:
        index = USER_SESSIONS_KEY.format(user_id=user_id)
        session_ids = [sid.decode() for sid in self._redis.zrange(index, 0, -1)]
        pipe = self._redis.pipeline()
        for sid in session_ids:
            pipe.delete(SESSION_KEY.format(sid=sid))
        pipe.delete(index)
        results = pipe.execute()
        return sum(1 for r in results[:-1] if r)

    def _ttl(self, now: float, absolute_expires_at: float) -> int:
        return max(1, int(min(self.idle_seconds, absolute_expires_at - now)))


EXTENSION_KEY = "estacionate.sessions"


def current_sessions() -> SessionStore:
    from flask import current_app

    return current_app.extensions[EXTENSION_KEY]
