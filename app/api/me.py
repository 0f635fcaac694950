"""``/v1/me``: the caller's account and webhook signing secret."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.residents import resident_document
from app.api.schemas import PROBLEM_RESPONSES
from app.extensions import db
from app.models import Resident, User
from app.services import users
from app.services.residents import with_contact

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
    principal = current_principal()
    user = db.session.get(User, principal.user_id)
    assert user is not None  # authenticate() just loaded it
    resident = None
    if principal.resident_id is not None:
        profile = db.session.get(Resident, principal.resident_id)
        assert profile is not None
        resident = resident_document(*with_contact(profile))
    return {
        "id": str(user.id),
        "email": user.email,
        "roles": list(principal.roles),
        "memberships": [
            {
                "id": str(m.membership_id),
                "organization_id": str(m.organization_id),
                "role": m.role,
                "building_ids": sorted(str(b) for b in m.building_ids),
            }
            for m in principal.memberships
        ],
        "resident": resident,
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
