"""Logging in (password, then a second factor where required), sessions, and resolving tokens.

Login answers the same 401 for an unknown e-mail and a wrong password, after the same argon2
work. Every password check (login, password change) is first reserved with the account's guard
(``app.security.lockout``): a locked account, or one whose allowed attempts are all in flight,
answers 429 ``account-locked`` before the password is even checked. A second-factor code is
checked only after an attempt was reserved on its challenge, which refuses while the account is
locked too. Only a completed login (the second factor included, where one is owed) resets the
account's failure counts. Every outcome is audited, never with the address or a secret.

A staff principal (``platform_admin``, ``support``, any organization membership) is served only
by a session that gave a second factor: a role granted to someone already logged in with a
password alone answers ``mfa-enrollment-required`` (no MFA yet) or ``mfa-required`` on that
session until they log in again with it. Only logging out and enrolling stay open to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, text, update

from app.domain.notifications import SecurityChange
from app.extensions import db
from app.models import Membership, User, membership_buildings
from app.problems import Problem
from app.security import mfa_challenges, rbac
from app.security.crypto import blind_index
from app.security.lockout import AccountLocked, Attempt, current_guard, lock_key
from app.security.mfa_challenges import Challenge, ChallengeGone, current_challenges
from app.security.passwords import current_passwords
from app.security.rbac import MembershipScope, Principal
from app.security.sessions import current_sessions
from app.security.tokens import InvalidToken, current_tokens, decode_once
from app.services import audit, notifications, users
from app.services.sessions import open_session, revoke_sessions

INVALID_CREDENTIALS = "Invalid e-mail or password."
SESSION_ENDED = "The session has ended; log in again."
MFA_TOKEN_INVALID = "The mfa_token is invalid or expired; log in again."  # noqa: S105 (a message)


def account_key(email: str) -> str:
    """The lockout key of an address: its blind index, so Redis never holds the address."""
    return blind_index("email", email).hex()


def user_account(user: User) -> str:
    """The lockout key of a user: the stored blind index of their e-mail (what ``account_key`` computes)."""
    return bytes(user.email_bidx).hex()


def locked_problem(seconds: int, *, keep_changes: bool = False) -> Problem:
    """429 ``account-locked``; ``keep_changes``: the refusal's audit row is committed (it is evidence)."""
    return Problem(
        "account-locked",
        "Too many failed attempts; try again later.",
        headers={"Retry-After": str(seconds)},
        keep_changes=keep_changes,
    )


@contextmanager
def password_attempt(account: str, actor: audit.Actor, **details: Any) -> Iterator[Attempt]:
    """Reserve a password check on the account (429 if it refuses one now); released on leaving."""
    try:
        attempt = current_guard().attempt(account)
    except AccountLocked as locked:
        audit.record("auth.login_locked", actor, entity_type="user", entity_id=actor.id, details=details or None)
        raise locked_problem(locked.seconds, keep_changes=True) from None
    with attempt:
        yield attempt


def _count_failure(attempt: Attempt, actor: audit.Actor) -> None:
    lock = attempt.failed()
    if lock is not None:
        audit.record("auth.account_locked", actor, entity_type="user", entity_id=actor.id, details={"seconds": lock})


def login(email: str, password: str, ip: str | None, user_agent: str | None) -> dict[str, Any]:
    """One of the three answers of ``POST /v1/auth/login`` (API.md)."""
    # The hashing slot first: when every slot is busy the login answers 503 having looked nothing
    # up and reserved nothing, so a flood of refused logins costs next to nothing.
    with current_passwords().slot():
        account = account_key(email)
        user = users.find_by_email(email)
        actor = audit.Actor("human", user.id if user else None, ip, user_agent)
        with password_attempt(account, actor) as attempt:
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
                audit.record(
                    "auth.login_failed", actor, entity_type="user", entity_id=actor.id, details={"reason": reason}
                )
                if not ok:
                    _count_failure(attempt, actor)
                raise Problem("unauthenticated", INVALID_CREDENTIALS, keep_changes=True)
        _upgrade_hash(user, password)
    # A right password alone resets nothing: the count goes on until the second factor is given.
    if user.mfa_enabled:
        return _challenge(user, mfa_challenges.VERIFY, actor, "mfa_required")
    if rbac.mfa_required(user, has_membership=bool(membership_scopes(user.id))):
        return _challenge(user, mfa_challenges.ENROLL, actor, "mfa_enrollment_required")
    current_guard().login_completed(account)
    return open_session(user, ip, user_agent).as_dict()


def _upgrade_hash(user: User, password: str) -> None:
    """Re-hash a verified password whose hash has older argon2 parameters, in the unit of work."""
    fresh = current_passwords().upgraded(user.password_hash, password)
    if fresh is not None:  # compare-and-swap: a concurrent password change wins
        db.session.execute(
            update(User)
            .where(User.id == user.id, User.password_hash == user.password_hash)
            .values(password_hash=fresh)
            .execution_options(synchronize_session=False)
        )


def _challenge(user: User, purpose: str, actor: audit.Actor, flag: str) -> dict[str, Any]:
    challenge = current_challenges().create(str(user.id), purpose)
    ttl = current_challenges().ttl_seconds
    token = current_tokens().issue(str(user.id), challenge.challenge_id, ttl, purpose=purpose)
    audit.record("auth.password_accepted", actor, entity_type="user", entity_id=user.id, details={"next": purpose})
    return {flag: True, "mfa_token": token, "expires_in": ttl}


def resolve_challenge(token: str, purpose: str) -> tuple[User, Challenge]:
    """The user and live challenge an ``mfa_token`` names; 401 if expired, used or forged."""
    try:
        claims = current_tokens().decode(token, purpose=purpose)
    except InvalidToken as exc:
        raise Problem("unauthenticated", MFA_TOKEN_INVALID) from exc
    challenge = current_challenges().get(claims.session_id, claims.user_id, purpose)
    user = db.session.get(User, uuid.UUID(claims.user_id)) if challenge else None
    if challenge is None or user is None or not user.is_active or user.banned_at is not None:
        raise Problem("unauthenticated", MFA_TOKEN_INVALID)
    return user, challenge


def reserve_code_attempt(user: User, challenge: Challenge, actor: audit.Actor) -> None:
    """Take one attempt on the challenge before a code is checked: 401 if none is left, 429 if locked."""
    try:
        current_challenges().reserve(challenge, lock_key(user_account(user)))
    except ChallengeGone:
        raise Problem("unauthenticated", MFA_TOKEN_INVALID) from None
    except AccountLocked as locked:
        audit.record("auth.login_locked", actor, entity_type="user", entity_id=user.id, details={"step": "mfa"})
        raise locked_problem(locked.seconds, keep_changes=True) from None


def reserve_challenge(token: str, purpose: str, actor_ip: str | None, user_agent: str | None) -> tuple[User, Challenge]:
    """``resolve_challenge`` for a step that checks a code: the attempt is reserved before the check.

    One Redis round trip: the reservation script also proves the challenge is live and the user's.
    """
    try:
        claims = current_tokens().decode(token, purpose=purpose)
        user_id = uuid.UUID(claims.user_id)
    except (InvalidToken, ValueError) as exc:
        raise Problem("unauthenticated", MFA_TOKEN_INVALID) from exc
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.banned_at is not None:
        raise Problem("unauthenticated", MFA_TOKEN_INVALID)
    challenge = Challenge(claims.session_id, claims.user_id, purpose)
    reserve_code_attempt(user, challenge, audit.Actor("human", user.id, actor_ip, user_agent))
    return user, challenge


def logout(principal: Principal, actor: audit.Actor) -> None:
    current_sessions().revoke(principal.session_id, str(principal.user_id))
    audit.record("auth.logout", actor, entity_type="session", entity_id=principal.session_id)


def logout_all(principal: Principal, actor: audit.Actor) -> None:
    revoke_sessions(principal.user_id, actor, reason="logout_all")


def check_current_password(user: User, password: str, actor: audit.Actor, *, step: str, pointer: str) -> None:
    """Re-check the logged-in user's password before a grave change (422 at ``pointer`` if wrong).

    A password attempt like a login's: refused while locked, and a wrong one counts toward the
    lock and leaves an ``auth.<step>_failed`` audit row (committed: it is evidence). The caller
    holds a hashing slot.
    """
    with password_attempt(user_account(user), actor, step=step) as attempt:
        if not current_passwords().verify(user.password_hash, password):
            audit.record(f"auth.{step}_failed", actor, entity_type="user", entity_id=user.id)
            _count_failure(attempt, actor)
            raise Problem(
                "validation-error",
                "The current password is not correct." if step == "password_change" else "The password is not correct.",
                errors=[{"pointer": pointer, "detail": "incorrect"}],
                keep_changes=True,  # the failed attempt's audit rows
            )


def confirm_password(principal: Principal, password: str, actor: audit.Actor, *, step: str) -> None:
    """The caller's password, checked again before an irreversible request (anonymization)."""
    user = db.session.get(User, principal.user_id)
    assert user is not None
    with current_passwords().slot():
        check_current_password(user, password, actor, step=step, pointer="/password")


def change_password(principal: Principal, current: str, new: str, actor: audit.Actor) -> None:
    """A password attempt like a login's: refused while locked, and a wrong one counts toward the lock."""
    user = db.session.get(User, principal.user_id)
    assert user is not None
    with current_passwords().slot():  # one slot for both hashes (503 before anything is checked)
        check_current_password(user, current, actor, step="password_change", pointer="/current_password")
        users.check_password_policy(new, pointer="/new_password")
        new_hash = current_passwords().hash(new)
    db.session.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
    audit.record("auth.password_changed", actor, entity_type="user", entity_id=user.id)
    revoke_sessions(user.id, actor, keep=principal.session_id, reason="password_changed")
    notifications.security_notice(user.id, SecurityChange.PASSWORD_CHANGED)


def authenticate(token: str, *, allow_pending_mfa: bool = False) -> Principal:
    """Principal for an access token whose session is live in Redis; 401 otherwise.

    A principal whose role requires a second factor, on a session that never gave one, is refused
    (``mfa-enrollment-required`` 403 without MFA, ``mfa-required`` 401 with it) unless the endpoint
    is one of those that fix it (``allow_pending_mfa``). The session's ``mfa`` field comes back from
    the same touch script, and ``mfa_enabled`` from the same principal query: no extra round trip.
    """
    try:
        claims = decode_once(token)
        user_id = uuid.UUID(claims.user_id)
    except (InvalidToken, ValueError) as exc:
        raise Problem("unauthenticated", "The access token is invalid or expired.") from exc
    session = current_sessions().touch(claims.session_id, claims.user_id)
    if session is None:
        raise Problem("unauthenticated", SESSION_ENDED)
    loaded = _load_principal(user_id, claims.session_id)
    if loaded is None:
        raise Problem("unauthenticated", SESSION_ENDED)
    principal, mfa_enabled = loaded
    if not session.mfa and not allow_pending_mfa and requires_mfa(principal):
        if mfa_enabled:
            raise Problem("mfa-required", "Your role needs a second factor: log in again and give your code.")
        raise Problem(
            "mfa-enrollment-required",
            "Your role needs a second factor: enroll (POST /v1/auth/mfa/enroll, then /confirm) or log in again.",
        )
    return principal


def requires_mfa(principal: Principal) -> bool:
    """``rbac.mfa_required`` for a loaded principal: a platform role that needs it, or any membership."""
    return principal.platform_role in rbac.MFA_REQUIRED_PLATFORM_ROLES or bool(principal.memberships)


#: The user, their resident profile and their memberships with building lists: one round trip,
#: on every authenticated request.
_PRINCIPAL = text(
    """
    SELECT u.platform_role, u.mfa_enabled, r.id AS resident_id, r.building_id AS resident_building_id,
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
    loaded = _load_principal(user_id, session_id)
    return loaded[0] if loaded is not None else None


def _load_principal(user_id: uuid.UUID, session_id: str) -> tuple[Principal, bool] | None:
    """The principal and whether the user has MFA on, in the one query."""
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
    principal = Principal(
        user_id=user_id,
        session_id=session_id,
        platform_role=row.platform_role,
        roles=platform_roles + tuple(sorted({m.role for m in memberships})),
        memberships=memberships,
        resident_id=row.resident_id,
        resident_building_id=row.resident_building_id,
    )
    return principal, bool(row.mfa_enabled)


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
