"""The authorization policy: every endpoint and every tenant query asks this module.

Scope always comes from the authenticated principal (its session and memberships), never from
the request. Rows outside the caller's scope are reported as not found, so existence never leaks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.models import Job, PlatformRole


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
