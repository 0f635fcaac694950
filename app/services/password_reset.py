"""Password reset by a WhatsApp code (DOMAIN.md "Password reset"; the rules are app/domain/password_reset.py).

``request`` answers the same way (202, nothing to tell) for every e-mail, in about the same time:
the whole request is padded to ``MIN_REQUEST_SECONDS`` after its commit and its job's publish, so
an unknown address, a known one without a phone, a throttled one and one that was sent a code
cannot be told apart by the clock. Both request limits are counted in Redis, over the e-mail's
blind index and the client's network, known account or not: 3 honoured requests per account per
hour, 10 per address per hour; the rest do nothing.

The code's key is derived from ``BLIND_INDEX_KEY`` (HMAC under it of a fixed label): a server-side
secret that never sits in the database, with no new variable to provision, and separate from every
blind index because the label differs.

``confirm`` checks the new password's strength first (a weak one costs no attempt), then the
code: an unknown account, no code, a spent, replaced, expired or killed code and a wrong guess
all answer the same 401 ``unauthenticated``, as a wrong password does at login (a wrong guess also
counts, and is kept with ``keep_changes``). The right
code sets the password, spends the code, revokes every session, clears the login lockout, writes
an audit row and sends a ``security_notice``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.domain import password_reset as rules
from app.domain.notifications import SecurityChange, Template
from app.extensions import db
from app.models import PasswordResetCode, Recipient, User
from app.problems import Problem
from app.runtime import current_redis, current_settings
from app.security.lockout import current_guard
from app.security.passwords import current_passwords
from app.security.rate_limits import client_network
from app.services import audit, notifications, users
from app.services.auth import account_key, user_account
from app.services.sessions import revoke_sessions
from app.unit_of_work import current_unit_of_work

#: Every reset request takes at least this long (wall clock, after its commit), found or not.
MIN_REQUEST_SECONDS = 0.25
_WINDOW_SECONDS = 3600
_KEY_LABEL = b"estacionate password-reset codes v1"
INVALID_CODE = "The code is not valid, has expired or was replaced; request a new one."


def code_key() -> bytes:
    return hmac.new(current_settings().blind_index_key_bytes(), _KEY_LABEL, hashlib.sha256).digest()


def _now() -> datetime:
    return datetime.now(UTC)


def _within_limits(email: str, ip: str | None) -> bool:
    """Count this request against its account and its address; True if both still allow it."""
    account = f"pwreset:account:{account_key(email)}"
    address = f"pwreset:ip:{client_network(ip)}"
    pipe = current_redis().pipeline(transaction=False)
    for key in (account, address):  # a fixed window: the first request of the hour starts it
        pipe.set(key, 0, ex=_WINDOW_SECONDS, nx=True)
        pipe.incr(key)
    _, by_account, _, by_address = pipe.execute()
    return by_account <= rules.REQUESTS_PER_ACCOUNT_PER_HOUR and by_address <= rules.REQUESTS_PER_IP_PER_HOUR


def request(email: str, ip: str | None, user_agent: str | None, *, now: datetime | None = None) -> None:
    """``POST /v1/auth/password-reset``: maybe send a code; nothing tells the caller which."""
    started = time.monotonic()
    now = now or _now()
    allowed = _within_limits(email, ip)
    user = users.find_by_email(email)
    phone = notifications.account_phone(user.id) if user is not None else None
    usable = user is not None and user.is_active and user.banned_at is None and user.password_hash is not None
    if allowed and usable and phone is not None:
        assert user is not None
        code, state = rules.issue(code_key(), str(user.id), now=now)
        values = {
            "code_hash": state.code_hash,
            "expires_at": state.expires_at,
            "failed_attempts": 0,
            "spent": False,
        }
        db.session.execute(
            pg_insert(PasswordResetCode)
            .values(user_id=user.id, **values)
            .on_conflict_do_update(index_elements=[PasswordResetCode.user_id], set_={**values, "updated_at": now})
        )
        notifications.queue(
            Template.PASSWORD_RESET_CODE,
            to=phone[0],
            recipient=Recipient.ACCOUNT,
            variables={"code": code, "valid_minutes": int(rules.CODE_TTL.total_seconds() // 60)},
            timezone=phone[1],
            user_id=user.id,
        )
        audit.record(
            "auth.password_reset_requested",
            audit.Actor("human", user.id, ip, user_agent),
            entity_type="user",
            entity_id=user.id,
        )
    else:
        rules.hash_code(code_key(), "-", rules.new_code())  # the same hashing work as a sent code
    # Last of the callbacks, so the pad covers the commit and the job's publish too.
    current_unit_of_work().after_commit(lambda: _pad(started))


def _pad(started: float) -> None:
    left = MIN_REQUEST_SECONDS - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)


def _refused() -> Problem:
    """A code is a credential: refused like a wrong password at login (401), whatever the reason."""
    return Problem("unauthenticated", INVALID_CODE, keep_changes=True)  # keep: a wrong guess's count


def confirm(
    email: str, code: str, new_password: str, ip: str | None, user_agent: str | None, *, now: datetime | None = None
) -> None:
    """``POST /v1/auth/password-reset/confirm``: the right code sets the password (see the module doc)."""
    now = now or _now()
    users.check_password_policy(new_password, pointer="/new_password")
    user = users.find_by_email(email)
    stored = db.session.get(PasswordResetCode, user.id, with_for_update=True) if user is not None else None
    if user is None or stored is None or not user.is_active or user.banned_at is not None:
        rules.hash_code(code_key(), "-", code)  # the same work as a real check
        raise _refused()
    actor = audit.Actor("human", user.id, ip, user_agent)
    state = rules.ResetCode(stored.code_hash, stored.expires_at, stored.failed_attempts, stored.spent)
    verdict = rules.check(state, code, key=code_key(), subject=str(user.id), now=now)
    if not verdict.accepted:
        stored.failed_attempts = verdict.failed_attempts
        audit.record(
            "auth.password_reset_failed",
            actor,
            entity_type="user",
            entity_id=user.id,
            details={"outcome": verdict.outcome.value},
        )
        raise _refused()
    with current_passwords().slot():
        new_hash = current_passwords().hash(new_password)
    stored.spent = True
    db.session.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
    audit.record("auth.password_reset", actor, entity_type="user", entity_id=user.id)
    revoke_sessions(user.id, actor, reason="password_reset")
    account = user_account(user)
    current_unit_of_work().after_commit(lambda: current_guard().login_completed(account))
    notifications.security_notice(user.id, SecurityChange.PASSWORD_CHANGED, now)
