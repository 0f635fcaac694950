"""The authorization policy: every endpoint and every tenant query asks this module.

Scope always comes from the authenticated principal (its session and memberships), never from
the request. Rows outside the caller's scope are reported as not found, so existence never leaks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.models import Job, PlatformRole, User
from app.problems import Problem

#: Roles whose holders must use a second factor (staff membership roles join them with organizations).
MFA_REQUIRED_PLATFORM_ROLES = frozenset({PlatformRole.PLATFORM_ADMIN, PlatformRole.SUPPORT})


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    session_id: str
    platform_role: str | None = None
    roles: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_platform_admin(self) -> bool:
        return self.platform_role == PlatformRole.PLATFORM_ADMIN


def can_view_job(principal: Principal, job: Job) -> bool:
    """A job is visible to whoever submitted it, and to platform admins."""
    return job.owner_user_id == principal.user_id or principal.is_platform_admin


def mfa_required(user: User) -> bool:
    """Staff accounts see residents' personal data: a password alone must never be enough."""
    return user.platform_role in MFA_REQUIRED_PLATFORM_ROLES


def require_platform_admin(principal: Principal) -> None:
    if not principal.is_platform_admin:
        raise Problem("forbidden", "This action needs the platform_admin role.")
