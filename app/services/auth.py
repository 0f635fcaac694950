"""Logging in and out, and resolving a bearer token to a principal.

Login answers the same 401 for an unknown e-mail and a wrong password, after the same argon2
work, and audits both without the address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.extensions import db
from app.models import User
from app.problems import Problem
from app.security.passwords import current_passwords
from app.security.rbac import Principal
from app.security.sessions import current_sessions
from app.security.tokens import InvalidToken, current_tokens
from app.services import audit, users

INVALID_CREDENTIALS = "Invalid e-mail or password."


@dataclass(frozen=True)
class LoginResult:
    access_token: str
    expires_in: int
    session_id: str

    def as_dict(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "session_id": self.session_id,
        }


def login(email: str, password: str, ip: str | None, user_agent: str | None) -> LoginResult:
    user = users.find_by_email(email)
    ok = current_passwords().verify(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        reason = "unknown_account" if user is None else ("inactive" if ok else "bad_password")
        actor = audit.Actor("human", user.id if user else None, ip, user_agent)
        audit.record(
            "auth.login_failed",
            actor,
            entity_type="user",
            entity_id=user.id if user else None,
            details={"reason": reason},
        )
        db.session.commit()
        raise Problem("unauthenticated", INVALID_CREDENTIALS)
    return _open_session(user, ip, user_agent)


def _open_session(user: User, ip: str | None, user_agent: str | None) -> LoginResult:
    store = current_sessions()
    session = store.create(str(user.id), ip, user_agent)
    try:
        audit.record(
            "auth.login",
            audit.Actor("human", user.id, ip, user_agent),
            entity_type="session",
            entity_id=session.session_id,
        )
        db.session.commit()
    except Exception:
        store.revoke(session.session_id, str(user.id))
        raise
    ttl = int(session.absolute_expires_at - session.created_at)
    token = current_tokens().issue(str(user.id), session.session_id, ttl)
    return LoginResult(token, ttl, session.session_id)


def logout(principal: Principal, actor: audit.Actor) -> None:
    current_sessions().revoke(principal.session_id, str(principal.user_id))
    audit.record("auth.logout", actor, entity_type="session", entity_id=principal.session_id)
    db.session.commit()


def authenticate(token: str) -> Principal:
    """Principal for a bearer token whose session is live in Redis; 401 otherwise."""
    try:
        claims = current_tokens().decode(token)
        user_id = uuid.UUID(claims.user_id)
    except (InvalidToken, ValueError) as exc:
        raise Problem("unauthenticated", "The access token is invalid or expired.") from exc
    session = current_sessions().touch(claims.session_id, claims.user_id)
    if session is None:
        raise Problem("unauthenticated", "The session has ended; log in again.")
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        raise Problem("unauthenticated", "The session has ended; log in again.")
    return Principal(
        user_id=user.id, session_id=claims.session_id, platform_role=user.platform_role, roles=tuple(user.roles)
    )
