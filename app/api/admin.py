"""``/v1/admin``: platform administration: bans and anonymizations."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from flask_openapi3 import Tag
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from app.api.callbacks import validated_callback_url
from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.idempotency import idempotent
from app.api.openapi import APIBlueprint, problems
from app.api.schemas import CallbackField, JobAccepted, StrictModel, exactly_one_of, no_nulls
from app.domain.timefmt import rfc3339
from app.models import User
from app.representation import Document
from app.services import anonymization, staff

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
    """Ban a user: every session of theirs ends at once and login is refused.

    platform_admin: anyone; org_admin: residents of its organization's buildings (anyone else: 404).
    """
    user = staff.ban(current_principal(), path.user_id, request_actor(), reason=body.reason)
    return BanState.of(user).model_dump(mode="json")


@bp.post("/users/<user_id>/unban", responses={200: BanState})
@login_required
def unban_user(path: UserPath) -> dict[str, object]:
    """Lift a ban: the user may log in again (platform_admin; org_admin for its residents)."""
    return BanState.of(staff.unban(current_principal(), path.user_id, request_actor())).model_dump(mode="json")


def _iso_date(value: Any) -> Any:
    """A JSON string ``YYYY-MM-DD``, not a number pydantic could read as a timestamp."""
    if not isinstance(value, str):
        raise ValueError("a date as text, YYYY-MM-DD")
    return value


JsonDate = Annotated[date, BeforeValidator(_iso_date)]


class AnonymizationRequest(CallbackField):
    """Exactly one of ``user_ids`` or ``inactive_since``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=exactly_one_of("user_ids", "inactive_since"))

    user_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=1000)
    inactive_since: JsonDate | None = Field(
        default=None,
        description="Residents with no login since this date, created before it, and no booking to come.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_null_key(cls, data: Any) -> Any:
        return no_nulls(data, ("user_ids", "inactive_since"))

    @model_validator(mode="after")
    def _exactly_one(self) -> AnonymizationRequest:
        if (self.user_ids is None) == (self.inactive_since is None):
            raise ValueError("send exactly one of user_ids or inactive_since")
        return self

    @field_validator("inactive_since")
    @classmethod
    def _in_the_past(cls, value: date | None) -> date | None:
        # "no login since" a date to come would be everyone: refused rather than a mass erasure.
        if value is not None and value > datetime.now(UTC).date():
            raise ValueError("inactive_since must not be in the future")
        return value


@bp.post("/anonymizations", responses={202: JobAccepted, **problems(409)})
@login_required
@idempotent
def create_anonymization(body: AnonymizationRequest) -> tuple[dict[str, object], int, dict[str, str]]:
    """Anonymize people (a ``gdpr.anonymize`` job with progress; result ``{"anonymized", "skipped"}``).

    platform_admin: anyone; org_admin: residents of its organization's buildings (anyone else is
    404, as an unknown id). ``inactive_since`` picks residents only.
    """
    document = anonymization.request_bulk(
        current_principal(),
        request_actor(),
        user_ids=body.user_ids,
        inactive_since=body.inactive_since,
        callback_url=validated_callback_url(body.callback_url),
    )
    return document, 202, {"Location": document["status_url"]}
