"""Logging in (password, then a second factor where required), sessions, and resolving tokens.

Login answers the same 401 for an unknown e-mail and a wrong password, after the same argon2
work; a locked account answers 429 ``account-locked`` before the password is even checked. Every
outcome is audited, never with the address or a secret.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, text, update

from app.extensions import db
from app.models import Membership, User, membership_buildings
from app.problems import Problem
from app.security import mfa_challenges, rbac
from app.security.crypto import blind_index
from app.security.lockout import current_guard
from app.security.mfa_challenges import Challenge, current_challenges
from app.security.passwords import current_passwords
from app.security.rbac import MembershipScope, Principal
from app.security.sessions import current_sessions
from app.security.tokens import InvalidToken, current_tokens, decode_once
from app.services import audit, users
from app.services.sessions import open_session, revoke_sessions

INVALID_CREDENTIALS = "Invalid e-mail or password."
SESSION_ENDED = "The session has ended; log in again."


def account_key(email: str) -> str:
    """The lockout key of an address: its blind index, so Redis never holds the address."""
    return blind_index("email", email).hex()


def login(email: str, password: str, ip: str | None, user_agent: str | None) -> dict[str, Any]:
    """One of the three answers of ``POST /v1/auth/login`` (API.md)."""
    guard = current_guard()
    account = account_key(email)
    user = users.find_by_email(email)
    actor = audit.Actor("human", user.id if user else None, ip, user_agent)
    locked_for = guard.retry_after(account)
    if locked_for is not None:
        audit.record("auth.login_locked", actor, entity_type="user", entity_id=actor.id)
        db.session.commit()
        raise Problem(
            "account-locked", "Too many failed attempts; try again later.", headers={"Retry-After": str(locked_for)}
        )
    ok = current_passwords().verify(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active or user.banned_at is not None:
        reason = (
            "unknown_account"
            if user is None
            else "bad_password"
            if not ok
            else "banned"
            if user.banned_at
            else "inactive"
        )
        audit.record("auth.login_failed", actor, entity_type="user", entity_id=actor.id, details={"reason": reason})
        if not ok:
            lock = guard.record_failure(account)
            if lock is not None:
                audit.record(
                    "auth.account_locked", actor, entity_type="user", entity_id=actor.id, details={"seconds": lock}
                )
        db.session.commit()
        raise Problem("unauthenticated", INVALID_CREDENTIALS)
    guard.reset(account)
    if user.mfa_enabled:
        return _challenge(user, mfa_challenges.VERIFY, actor, "mfa_required")
    if rbac.mfa_required(user, has_membership=bool(membership_scopes(user.id))):
        return _challenge(user, mfa_challenges.ENROLL, actor, "mfa_enrollment_required")
    return open_session(user, ip, user_agent).as_dict()


def _challenge(user: User, purpose: str, actor: audit.Actor, flag: str) -> dict[str, Any]:
    challenge = current_challenges().create(str(user.id), purpose)
    ttl = current_challenges().ttl_seconds
    token = current_tokens().issue(str(user.id), challenge.challenge_id, ttl, purpose=purpose)
    audit.record("auth.password_accepted", actor, entity_type="user", entity_id=user.id, details={"next": purpose})
    db.session.commit()
    return {flag: True, "mfa_token": token, "expires_in": ttl}


def resolve_challenge(token: str, purpose: str) -> tuple[User, Challenge]:
    """The user and live challenge an ``mfa_token`` names; 401 if expired, used or forged."""
    try:
        claims = current_tokens().decode(token, purpose=purpose)
    except InvalidToken as exc:
        raise Problem("unauthenticated", "The mfa_token is invalid or expired; log in again.") from exc
    challenge = current_challenges().get(claims.session_id, claims.user_id, purpose)
    user = db.session.get(User, uuid.UUID(claims.user_id)) if challenge else None
    if challenge is None or user is None or not user.is_active or user.banned_at is not None:
        raise Problem("unauthenticated", "The mfa_token is invalid or expired; log in again.")
    return user, challenge


def logout(principal: Principal, actor: audit.Actor) -> None:
    current_sessions().revoke(principal.session_id, str(principal.user_id))
    audit.record("auth.logout", actor, entity_type="session", entity_id=principal.session_id)
    db.session.commit()


def logout_all(principal: Principal, actor: audit.Actor) -> None:
    revoke_sessions(principal.user_id, actor, reason="logout_all")
    db.session.commit()


def change_password(principal: Principal, current: str, new: str, actor: audit.Actor) -> None:
    user = db.session.get(User, principal.user_id)
    assert user is not None
    if not current_passwords().verify(user.password_hash, current):
        current_guard().record_failure(account_key(user.email))  # guesses here count toward the lockout
        audit.record("auth.password_change_failed", actor, entity_type="user", entity_id=user.id)
        db.session.commit()
        raise Problem(
            "validation-error",
            "The current password is not correct.",
            errors=[{"pointer": "/current_password", "detail": "incorrect"}],
        )
    users.check_password_policy(new, pointer="/new_password")
    db.session.execute(update(User).where(User.id == user.id).values(password_hash=current_passwords().hash(new)))
    audit.record("auth.password_changed", actor, entity_type="user", entity_id=user.id)
    revoke_sessions(user.id, actor, keep=principal.session_id, reason="password_changed")
    db.session.commit()


def authenticate(token: str) -> Principal:
    """Principal for an access token whose session is live in Redis; 401 otherwise."""
    try:
        claims = decode_once(token)
        user_id = uuid.UUID(claims.user_id)
    except (InvalidToken, ValueError) as exc:
        raise Problem("unauthenticated", "The access token is invalid or expired.") from exc
    session = current_sessions().touch(claims.session_id, claims.user_id)
    if session is None:
        raise Problem("unauthenticated", SESSION_ENDED)
    principal = load_principal(user_id, claims.session_id)
    if principal is None:
        raise Problem("unauthenticated", SESSION_ENDED)
    return principal


#: The user, their resident profile and their memberships with building lists: one round trip,
#: on every authenticated request.
_PRINCIPAL = text(
    """
    SELECT u.platform_role, r.id AS resident_id, r.building_id AS resident_building_id,
           coalesce((
               SELECT json_agg(json_build_object(
                   'id', m.id, 'organization_id', m.organization_id, 'role', m.role,
                   'buildings', (SELECT coalesce(json_agg(mb.building_id), '[]'::json)
                                 FROM membership_buildings mb WHERE mb.membership_id = m.id)))
               FROM memberships m WHERE m.user_id = u.id
           ), '[]'::json) AS memberships
    FROM users u
    LEFT JOIN residents r ON r.user_id = u.id
    WHERE u.id = :user_id AND u.is_active AND u.banned_at IS NULL
    """
)


def load_principal(user_id: uuid.UUID, session_id: str) -> Principal | None:
    """Who the user is for authorization, or None if they no longer may act (inactive, banned, gone)."""
    row = db.session.execute(_PRINCIPAL, {"user_id": user_id}).first()
    if row is None:
        return None
    memberships = tuple(
        MembershipScope(
            uuid.UUID(m["id"]),
            uuid.UUID(m["organization_id"]),
            m["role"],
            frozenset(uuid.UUID(b) for b in m["buildings"]),
        )
        for m in row.memberships
    )
    platform_roles = (row.platform_role,) if row.platform_role else ()
    return Principal(
        user_id=user_id,
        session_id=session_id,
        platform_role=row.platform_role,
        roles=platform_roles + tuple(sorted({m.role for m in memberships})),
        memberships=memberships,
        resident_id=row.resident_id,
        resident_building_id=row.resident_building_id,
    )


def membership_scopes(user_id: uuid.UUID) -> tuple[MembershipScope, ...]:
    """The user's memberships with their building lists, in one query."""
    rows = db.session.execute(
        select(
            Membership.id,
            Membership.organization_id,
            Membership.role,
            func.array_remove(func.array_agg(membership_buildings.c.building_id), None),
        )
        .outerjoin(membership_buildings, membership_buildings.c.membership_id == Membership.id)
        .where(Membership.user_id == user_id)
        .group_by(Membership.id)
    ).all()
    return tuple(MembershipScope(r[0], r[1], r[2], frozenset(r[3] or ())) for r in rows)
