"""``/v1/me``: the caller's account and webhook signing secret."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.schemas import PROBLEM_RESPONSES
from app.extensions import db
from app.models import User
from app.services import users

bp = APIBlueprint("me", __name__, url_prefix="/v1/me", abp_tags=[Tag(name="account")], abp_security=BEARER_SECURITY)


class MeResponse(BaseModel):
    id: str
    email: str
    roles: list[str]
    memberships: list[dict[str, object]]
    resident: dict[str, object] | None
    mfa_enabled: bool


class WebhookSecretResponse(BaseModel):
    secret: str


@bp.get("", responses={200: MeResponse, 401: PROBLEM_RESPONSES[401]})
@login_required
def me() -> dict[str, object]:
    """The logged-in user."""
    user = db.session.get(User, current_principal().user_id)
    assert user is not None  # authenticate() just loaded it
    return {
        "id": str(user.id),
        "email": user.email,
        "roles": user.roles,
        "memberships": [],
        "resident": None,
        "mfa_enabled": user.mfa_enabled,
    }


@bp.get("/webhook-secret", responses={200: WebhookSecretResponse, 401: PROBLEM_RESPONSES[401]})
@login_required
def get_webhook_secret() -> dict[str, str]:
    """The secret that signs your job callbacks (created on first request)."""
    return {"secret": users.webhook_secret(current_principal().user_id, request_actor())}


@bp.post("/webhook-secret", responses={200: WebhookSecretResponse, 401: PROBLEM_RESPONSES[401]})
@login_required
def rotate_webhook_secret() -> dict[str, str]:
    """Replace the secret; deliveries from now on are signed with the new one."""
    return {"secret": users.webhook_secret(current_principal().user_id, request_actor(), rotate=True)}
