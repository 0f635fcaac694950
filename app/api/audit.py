"""``/v1/audit-logs``: the audit trail, scoped (platform_admin everything, org_admin its organization's)."""

from __future__ import annotations

import uuid

from flask_openapi3 import Tag
from pydantic import ConfigDict, Field

from app.api.context import BEARER_SECURITY, current_principal, login_required
from app.api.openapi import APIBlueprint
from app.api.pages import PageQuery
from app.api.stats import Instant, _instant
from app.jobs.results import AuditLogDocument
from app.representation import Document
from app.services import audit_trail

bp = APIBlueprint(
    "audit", __name__, url_prefix="/v1/audit-logs", abp_tags=[Tag(name="audit")], abp_security=BEARER_SECURITY
)


class AuditQuery(PageQuery):
    model_config = ConfigDict(populate_by_name=True)

    entity_type: str | None = Field(default=None, min_length=1, max_length=64)
    entity_id: str | None = Field(default=None, min_length=1, max_length=128)
    actor_id: uuid.UUID | None = None
    action: str | None = Field(default=None, min_length=1, max_length=128)
    from_: Instant | None = Field(default=None, alias="from", description="Occurred at or after (inclusive).")
    to: Instant | None = Field(default=None, description="Occurred before (exclusive).")


class AuditLogPage(Document):
    items: list[AuditLogDocument]
    next_cursor: str | None


@bp.get("", responses={200: AuditLogPage})
@login_required
def list_audit_logs(query: AuditQuery) -> dict[str, object]:
    """Audit rows newest first. platform_admin: all; org_admin: its organization's entities (no ip shown)."""
    filters = audit_trail.AuditFilters(
        entity_type=query.entity_type,
        entity_id=query.entity_id,
        actor_id=query.actor_id,
        action=query.action,
        since=_instant(query.from_) if query.from_ else None,
        until=_instant(query.to) if query.to else None,
    )
    rows, next_cursor, show_ip = audit_trail.list_audit_logs(
        current_principal(), filters, limit=query.limit, cursor=query.cursor
    )
    items = [AuditLogDocument.of(row) for row in rows]
    if not show_ip:
        items = [item.model_copy(update={"ip": None}) for item in items]
    return AuditLogPage(items=items, next_cursor=next_cursor).model_dump(mode="json")
