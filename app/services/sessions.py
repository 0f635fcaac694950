"""Sessions as a use case: open one (with the per-user cap), list, revoke one or all, audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.domain.notifications import SecurityChange
from app.models import User
from app.problems import Problem
from app.security.rbac import Principal
from app.security.sessions import Session, current_sessions
from app.security.tokens import current_tokens
from app.services import audit, notifications
from app.unit_of_work import current_unit_of_work


@dataclass(frozen=True)
class LoginResult:
    access_token: str
    expires_in: int
    session_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "session_id": self.session_id,
        }


def open_session(
    user: User, ip: str | None, user_agent: str | None, *, mfa: bool = False, action: str = "auth.login"
) -> LoginResult:
    """Create a session (evicting the oldest beyond the cap) and audit it in the unit of work.

    The session lives in Redis from now on; if the unit of work rolls back (its audit rows could
    not be committed) the session is revoked again, so no session exists without its trail.

    ``mfa``: the login gave a second factor. A staff principal is served only by such a session
    (``app.services.auth.authenticate``).
    """
    store = current_sessions()
    session, evicted = store.create(str(user.id), ip, user_agent, mfa=mfa)
    owner = str(user.id)
    current_unit_of_work().after_rollback(lambda: store.revoke(session.session_id, owner))
    actor = audit.Actor("human", user.id, ip, user_agent)
    audit.record(action, actor, entity_type="session", entity_id=session.session_id)
    for session_id in evicted:
        audit.record("session.evicted", actor, entity_type="session", entity_id=session_id)
    notifications.security_notice(user.id, SecurityChange.NEW_LOGIN)
    ttl = int(session.absolute_expires_at - session.created_at)
    token = current_tokens().issue(str(user.id), session.session_id, ttl)
    return LoginResult(token, ttl, session.session_id)


def revoke_sessions(user_id: uuid.UUID, actor: audit.Actor, *, keep: str | None = None, reason: str) -> list[str]:
    """End every session of a user (but ``keep``), auditing each, in the unit of work."""
    ended = current_sessions().revoke_all(str(user_id), keep=keep)
    for session_id in ended:
        audit.record("session.revoked", actor, entity_type="session", entity_id=session_id, details={"reason": reason})
    return ended


def list_sessions(principal: Principal) -> list[Session]:
    return sorted(current_sessions().list_for_user(str(principal.user_id)), key=lambda s: s.created_at, reverse=True)


def revoke_session(principal: Principal, session_id: str, actor: audit.Actor) -> None:
    if not current_sessions().revoke(session_id, str(principal.user_id)):
        raise Problem("not-found", "No such session.")
    audit.record("session.revoked", actor, entity_type="session", entity_id=session_id, details={"reason": "user"})
