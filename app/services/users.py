"""Creating and finding users, and their webhook signing secret."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.domain.events import EventType
from app.extensions import db
from app.jobs.webhooks import ensure_secret, new_secret
from app.models import User
from app.problems import Problem
from app.security.crypto import blind_index
from app.security.passwords import current_passwords
from app.services import audit, domain_events
from app.services.sessions import revoke_sessions
from app.unit_of_work import stored

MIN_PASSWORD_LENGTH = 10


def find_by_email(email: str) -> User | None:
    return db.session.execute(select(User).where(User.email_bidx == blind_index("email", email))).scalar_one_or_none()


def check_password_policy(password: str, *, pointer: str = "/password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Problem(
            "validation-error",
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters.",
            errors=[{"pointer": pointer, "detail": f"at least {MIN_PASSWORD_LENGTH} characters"}],
        )


def create_user(email: str, password: str, actor: audit.Actor, *, platform_role: str | None = None) -> User:
    """Create a user in the unit of work; 409 ``conflict`` if the e-mail is taken."""
    check_password_policy(password)
    user = User(
        email=email.strip(),
        email_bidx=blind_index("email", email),
        password_hash=current_passwords().hash(password),
        platform_role=platform_role,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as exc:
        raise Problem("conflict", "An account with this e-mail already exists.") from exc
    audit.record("user.created", actor, entity_type="user", entity_id=user.id, details={"platform_role": platform_role})
    return user


def webhook_secret(user_id: uuid.UUID, actor: audit.Actor, *, rotate: bool = False) -> str:
    """The user's callback signing secret, created on first use; ``rotate`` replaces it.

    Creation goes through ``ensure_secret``, the one race-free path a first callback delivery
    uses too, so a secret read here is the one every callback is signed with.
    """
    if rotate:
        user = db.session.execute(select(User).where(User.id == user_id).with_for_update()).scalar_one()
        user.webhook_secret = secret = new_secret()
        audit.record("webhook_secret.rotated", actor, entity_type="user", entity_id=user_id)
    else:
        secret, created = ensure_secret(user_id)
        if created:
            audit.record("webhook_secret.created", actor, entity_type="user", entity_id=user_id)
    return secret


def ban(user_id: uuid.UUID, actor: audit.Actor, *, reason: str | None = None) -> User:
    """Refuse the user's logins and end every session of theirs at once."""
    if actor.id == user_id:
        raise Problem("conflict", "You cannot ban yourself.")
    user = db.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise Problem("not-found", "No such user.")
    if user.banned_at is None:
        user.banned_at = db.func.now()
        audit.record("user.banned", actor, entity_type="user", entity_id=user.id, details={"has_reason": bool(reason)})
        domain_events.user_changed(EventType.USER_BANNED, user.id)
    revoke_sessions(user.id, actor, reason="banned")
    return stored(user)


def unban(user_id: uuid.UUID, actor: audit.Actor) -> User:
    user = db.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise Problem("not-found", "No such user.")
    if user.banned_at is not None:
        user.banned_at = None
        audit.record("user.unbanned", actor, entity_type="user", entity_id=user.id)
        domain_events.user_changed(EventType.USER_UNBANNED, user.id)
    return stored(user)
