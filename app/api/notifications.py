"""WhatsApp notifications: your messages, your preferences, and Twilio's status callbacks."""

from __future__ import annotations

from datetime import datetime

from flask import Response, request
from flask_openapi3 import Tag
from twilio.request_validator import RequestValidator

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.openapi import APIBlueprint, problems
from app.api.pages import PageQuery
from app.api.schemas import JsonBool, StrictModel
from app.models import Notification
from app.problems import Problem
from app.representation import Document
from app.runtime import current_settings
from app.services import notifications

bp = APIBlueprint(
    "notifications", __name__, url_prefix="/v1/me", abp_tags=[Tag(name="notifications")], abp_security=BEARER_SECURITY
)
#: Twilio's side: no bearer token, a signature instead.
callbacks_bp = APIBlueprint("provider_callbacks", __name__, url_prefix="/v1/webhooks", abp_tags=[Tag(name="providers")])


def _utc(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


class NotificationItem(Document):
    id: str
    channel: str
    template: str
    status: str
    error_code: int | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, row: Notification) -> NotificationItem:
        return cls(
            id=str(row.id),
            channel=row.channel,
            template=row.template,
            status=row.status,
            error_code=row.error_code,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
        )


class NotificationPage(Document):
    items: list[NotificationItem]
    next_cursor: str | None


class PreferencesRequest(StrictModel):
    booking_updates: JsonBool


class PreferencesResponse(Document):
    booking_updates: bool


@bp.get("/notifications", responses={200: NotificationPage})
@login_required
def list_my_notifications(query: PageQuery) -> dict[str, object]:
    """WhatsApp messages sent to you, newest first."""
    rows, next_cursor = notifications.list_for_user(current_principal().user_id, limit=query.limit, cursor=query.cursor)
    return NotificationPage(items=[NotificationItem.of(r) for r in rows], next_cursor=next_cursor).model_dump(
        mode="json"
    )


@bp.patch("/notification-preferences", responses={200: PreferencesResponse})
@login_required
def set_notification_preferences(body: PreferencesRequest) -> dict[str, object]:
    """Turn booking updates on or off (security notices and reset codes are always sent)."""
    principal = current_principal()
    chosen = notifications.set_preferences(
        principal.user_id, booking_updates=body.booking_updates, actor=request_actor()
    )
    return PreferencesResponse(booking_updates=chosen).model_dump(mode="json")


#: What Twilio POSTs (form-encoded); documented here, read from ``request.form`` after the signature.
STATUS_CALLBACK_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["MessageSid", "MessageStatus"],
                "properties": {
                    "MessageSid": {"type": "string"},
                    "MessageStatus": {"type": "string"},
                    "ErrorCode": {"type": "string"},
                },
                "additionalProperties": {"type": "string"},
            }
        }
    },
}
SIGNATURE_HEADER = "X-Twilio-Signature"


def _signed_url() -> str:
    """What Twilio called and signed: ``PUBLIC_BASE_URL`` + path (+ query), never the Host it came through."""
    url = current_settings().public_base_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


@callbacks_bp.post(
    "/twilio/status",
    responses={204: None, **problems(403)},
    openapi_extensions={
        "requestBody": STATUS_CALLBACK_BODY,
        "parameters": [{"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}],
    },
)
def twilio_status_callback() -> Response:
    """Twilio's delivery status for a message, signed with the account's auth token."""
    settings = current_settings()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    token, base = settings.twilio_auth_token, settings.public_base_url
    if not (signature and token and base) or not RequestValidator(token).validate(
        _signed_url(), request.form, signature
    ):
        raise Problem("forbidden", "The request is not signed by Twilio.")
    sid, status = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
    if not sid or not status:
        raise Problem("validation-error", "MessageSid and MessageStatus are required.")
    raw_code = request.form.get("ErrorCode", "")
    error_code = int(raw_code) if raw_code.isdigit() and len(raw_code) < 10 else None
    notifications.apply_status(sid, status.lower(), error_code)
    return Response(status=204)
