"""``/v1/me``: the caller's account and webhook signing secret."""

from __future__ import annotations

from flask_openapi3 import Tag
from pydantic import Field

from app.api.callbacks import validated_callback_url
from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.idempotency import idempotent
from app.api.openapi import APIBlueprint
from app.api.residents import ResidentDocument
from app.api.schemas import CallbackField, JobAccepted
from app.extensions import db
from app.models import Resident, User
from app.representation import Document
from app.security.rbac import MembershipScope
from app.services import anonymization, auth, personal_data, users
from app.services.residents import with_contact

bp = APIBlueprint("me", __name__, url_prefix="/v1/me", abp_tags=[Tag(name="account")], abp_security=BEARER_SECURITY)


class MembershipDocument(Document):
    id: str
    organization_id: str
    role: str
    building_ids: list[str]

    @classmethod
    def of(cls, scope: MembershipScope) -> MembershipDocument:
        return cls(
            id=str(scope.membership_id),
            organization_id=str(scope.organization_id),
            role=scope.role,
            building_ids=sorted(str(b) for b in scope.building_ids),
        )


class MeResponse(Document):
    id: str
    email: str
    roles: list[str]
    memberships: list[MembershipDocument]
    resident: ResidentDocument | None
    mfa_enabled: bool


class WebhookSecretResponse(Document):
    secret: str


@bp.get("", responses={200: MeResponse})
@login_required
def get_me() -> dict[str, object]:
    """The logged-in user."""
    principal = current_principal()
    user = db.session.get(User, principal.user_id)
    assert user is not None  # authenticate() just loaded it
    resident = None
    if principal.resident_id is not None:
        profile = db.session.get(Resident, principal.resident_id)
        assert profile is not None
        resident = ResidentDocument.of(*with_contact(profile))
    return MeResponse(
        id=str(user.id),
        email=user.email,
        roles=list(principal.roles),
        memberships=[MembershipDocument.of(m) for m in principal.memberships],
        resident=resident,
        mfa_enabled=user.mfa_enabled,
    ).model_dump(mode="json")


@bp.get("/webhook-secret", responses={200: WebhookSecretResponse})
@login_required
def get_webhook_secret() -> dict[str, object]:
    """The secret that signs your job callbacks (created on first request)."""
    secret = users.webhook_secret(current_principal().user_id, request_actor())
    return WebhookSecretResponse(secret=secret).model_dump(mode="json")


@bp.post("/webhook-secret", responses={200: WebhookSecretResponse})
@login_required
def rotate_webhook_secret() -> dict[str, object]:
    """Replace the secret; deliveries from now on are signed with the new one."""
    secret = users.webhook_secret(current_principal().user_id, request_actor(), rotate=True)
    return WebhookSecretResponse(secret=secret).model_dump(mode="json")


class AnonymizeRequest(CallbackField):
    password: str = Field(min_length=1, max_length=1024, description="Your password: this cannot be undone.")


@bp.post("/anonymize", responses={202: JobAccepted})
@login_required
@idempotent
def anonymize_me(body: AnonymizeRequest) -> tuple[dict[str, object], int, dict[str, str]]:
    """Anonymize your account for good (a ``gdpr.anonymize`` job): your sessions end, login stops working."""
    principal, actor = current_principal(), request_actor()
    auth.confirm_password(principal, body.password, actor, step="anonymize")
    document = anonymization.request_self(principal, actor, callback_url=validated_callback_url(body.callback_url))
    return document, 202, {"Location": document["status_url"]}


@bp.post("/export", responses={202: JobAccepted})
@login_required
@idempotent
def export_me() -> tuple[dict[str, object], int, dict[str, str]]:
    """Everything held about you, as a ``gdpr.export`` job's result (kept 7 days, then purged)."""
    document = personal_data.request_export(current_principal(), request_actor())
    return document, 202, {"Location": document["status_url"]}
