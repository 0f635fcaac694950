"""``/v1/admin``: platform administration (bans so far)."""

from __future__ import annotations

import uuid

from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.openapi import APIBlueprint, problems
from app.api.schemas import StrictModel
from app.domain.timefmt import rfc3339
from app.models import User
from app.representation import Document
from app.security import rbac
from app.security.rbac import Capability
from app.services import users

bp = APIBlueprint("admin", __name__, url_prefix="/v1/admin", abp_tags=[Tag(name="admin")], abp_security=BEARER_SECURITY)


class UserPath(BaseModel):
    user_id: uuid.UUID


class BanRequest(StrictModel):
    reason: str | None = Field(default=None, max_length=500, description="Kept out of logs and the audit trail.")


class BanState(Document):
    id: str
    banned: bool
    banned_at: str | None

    @classmethod
    def of(cls, user: User) -> BanState:
        return cls(id=str(user.id), banned=user.banned_at is not None, banned_at=rfc3339(user.banned_at))


@bp.post("/users/<user_id>/ban", responses={200: BanState, **problems(409)})
@login_required
def ban_user(path: UserPath, body: BanRequest) -> dict[str, object]:
    """Ban a user: every session of theirs ends at once and login is refused (platform_admin)."""
    rbac.require(current_principal(), Capability.PLATFORM)
    user = users.ban(path.user_id, request_actor(), reason=body.reason)
    return BanState.of(user).model_dump(mode="json")


@bp.post("/users/<user_id>/unban", responses={200: BanState})
@login_required
def unban_user(path: UserPath) -> dict[str, object]:
    """Lift a ban: the user may log in again (platform_admin)."""
    rbac.require(current_principal(), Capability.PLATFORM)
    return BanState.of(users.unban(path.user_id, request_actor())).model_dump(mode="json")
