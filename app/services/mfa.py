"""TOTP second factor: enrollment, confirmation, verification at login, recovery codes, disabling.

Every change to a user's MFA revokes their other sessions and is audited. A TOTP code is
accepted once: the accepted time step is stored with a compare-and-swap, so a replayed code (or
the same code racing itself) is refused.

At login a code is checked only after an attempt was reserved on the ``mfa_token``'s challenge
(at most 5 per token, refused while the account is locked); each wrong code also counts toward
the account's lock (10 within an hour lock it, across every token). The sessions opened here
record that they gave a second factor.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, or_, update

from app.domain.notifications import SecurityChange
from app.extensions import db
from app.models import MfaRecoveryCode, User
from app.problems import Problem
from app.runtime import current_settings
from app.security import mfa_challenges, rbac, recovery_codes, totp
from app.security.crypto import blind_index
from app.security.lockout import current_guard
from app.security.mfa_challenges import Challenge, current_challenges
from app.security.passwords import current_passwords
from app.services import audit, notifications
from app.services.auth import membership_scopes, reserve_challenge, reserve_code_attempt, user_account
from app.services.sessions import LoginResult, open_session, revoke_sessions
from app.unit_of_work import current_unit_of_work


@dataclass(frozen=True)
class EnrollmentCaller:
    """Who may enroll: a full session (``session_id``) or an enrollment challenge (``challenge_id``)."""

    user_id: uuid.UUID
    session_id: str | None = None
    challenge_id: str | None = None


def _code_hash(user_id: uuid.UUID, code: str) -> bytes:
    return blind_index("recovery_code", code, scope=str(user_id))


def accept_code(user: User, secret: str, code: str) -> bool:
    """True if ``code`` is valid now and its time step was never used by this user (CAS)."""
    step = totp.matching_step(secret, code)
    if step is None:
        return False
    taken = db.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.mfa_last_step.is_(None), User.mfa_last_step < step))
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def use_recovery_code(user: User, code: str) -> bool:
    used = db.session.execute(
        update(MfaRecoveryCode)
        .where(
            MfaRecoveryCode.user_id == user.id,
            MfaRecoveryCode.code_hash == _code_hash(user.id, code),
            MfaRecoveryCode.used_at.is_(None),
        )
        .values(used_at=db.func.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    return used == 1


def start_enrollment(caller: EnrollmentCaller, actor: audit.Actor) -> dict[str, str]:
    user = db.session.get(User, caller.user_id, with_for_update=True)
    assert user is not None
    if user.mfa_enabled:
        raise Problem("conflict", "MFA is already enabled; disable it before enrolling again.")
    secret = totp.new_secret()
    user.mfa_pending_secret = secret
    uri = totp.provisioning_uri(secret, user.email, current_settings().totp_issuer)
    audit.record("mfa.enrollment_started", actor, entity_type="user", entity_id=user.id)
    return {"secret": secret, "otpauth_uri": uri}


def confirm_enrollment(
    caller: EnrollmentCaller, code: str, actor: audit.Actor, ip: str | None, user_agent: str | None
) -> tuple[list[str], LoginResult]:
    """Turn MFA on with a first code; new recovery codes; every older session ends."""
    user = db.session.get(User, caller.user_id, with_for_update=True)
    assert user is not None
    if user.mfa_enabled or not user.mfa_pending_secret:
        raise Problem("conflict", "Start an enrollment first (POST /v1/auth/mfa/enroll).")
    secret = user.mfa_pending_secret
    if caller.challenge_id:
        reserve_code_attempt(user, Challenge(caller.challenge_id, str(user.id), mfa_challenges.ENROLL), actor)
    if not accept_code(user, secret, code):  # a refused code changed nothing: only its audit row is kept
        if caller.challenge_id:
            current_challenges().record_failure(caller.challenge_id)
        audit.record("mfa.confirm_failed", actor, entity_type="user", entity_id=user.id)
        raise Problem("mfa-required", "The code is not valid.", keep_changes=True)
    user.mfa_secret, user.mfa_pending_secret, user.mfa_enabled = secret, None, True
    codes = _replace_recovery_codes(user.id)
    revoke_sessions(user.id, actor, reason="mfa_enabled")
    audit.record("mfa.enabled", actor, entity_type="user", entity_id=user.id)
    notifications.security_notice(user.id, SecurityChange.MFA_ENABLED)
    if caller.challenge_id:  # the login that asked for enrollment is complete once MFA is on for good
        challenge_id, account = caller.challenge_id, user_account(user)

        def complete_login() -> None:
            current_challenges().consume(challenge_id)
            current_guard().login_completed(account)

        current_unit_of_work().after_commit(complete_login)
    return codes, open_session(user, ip, user_agent, mfa=True)


def _replace_recovery_codes(user_id: uuid.UUID) -> list[str]:
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
    codes = recovery_codes.generate()
    db.session.add_all(MfaRecoveryCode(user_id=user_id, code_hash=_code_hash(user_id, c)) for c in codes)
    return codes


def verify_login(
    mfa_token: str, code: str | None, recovery_code: str | None, ip: str | None, user_agent: str | None
) -> LoginResult:
    """Second step of login: a TOTP code or a recovery code turns the mfa_token into a session."""
    user, challenge = reserve_challenge(mfa_token, mfa_challenges.VERIFY, ip, user_agent)
    actor = audit.Actor("human", user.id, ip, user_agent)
    if code is not None:
        ok = bool(user.mfa_secret) and accept_code(user, user.mfa_secret, code)
        method = "totp"
    else:
        ok = use_recovery_code(user, recovery_code or "")
        method = "recovery_code"
    if not ok:  # a refused code changed nothing: only the failure's records are kept
        destroyed = current_challenges().record_failure(challenge.challenge_id)
        lock = current_guard().record_mfa_failure(user_account(user))
        audit.record(
            "mfa.verify_failed",
            actor,
            entity_type="user",
            entity_id=user.id,
            details={"method": method, "token_destroyed": destroyed},
        )
        if lock is not None:
            audit.record("auth.account_locked", actor, entity_type="user", entity_id=user.id, details={"seconds": lock})
        raise Problem("mfa-required", "The code is not valid or was already used.", keep_changes=True)
    if not current_challenges().consume(challenge.challenge_id):  # a concurrent verify won with this token
        raise Problem("unauthenticated", "The mfa_token was already used; log in again.")
    current_guard().login_completed(user_account(user))
    audit.record("mfa.verified", actor, entity_type="user", entity_id=user.id, details={"method": method})
    return open_session(user, ip, user_agent, mfa=True)


def disable(user_id: uuid.UUID, session_id: str, password: str, code: str, actor: audit.Actor) -> None:
    user = db.session.get(User, user_id, with_for_update=True)
    assert user is not None
    if rbac.mfa_required(user, has_membership=bool(membership_scopes(user.id))):
        raise Problem("forbidden", "Your role requires MFA; it cannot be disabled.")
    if not user.mfa_enabled or not user.mfa_secret:
        raise Problem("conflict", "MFA is not enabled.")
    if not current_passwords().verify(user.password_hash, password) or not accept_code(user, user.mfa_secret, code):
        audit.record("mfa.disable_failed", actor, entity_type="user", entity_id=user.id)
        raise Problem("forbidden", "The password or the code is not correct.", keep_changes=True)
    user.mfa_enabled, user.mfa_secret, user.mfa_pending_secret, user.mfa_last_step = False, None, None, None
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    revoke_sessions(user.id, actor, keep=session_id, reason="mfa_disabled")
    audit.record("mfa.disabled", actor, entity_type="user", entity_id=user.id)
    notifications.security_notice(user.id, SecurityChange.MFA_DISABLED)
