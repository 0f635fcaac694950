"""``/v1/blocklist``: bans of e-mails, phones, RUTs, plates and IPs (global, organization, building)."""

from __future__ import annotations

import uuid
from typing import Literal

from flask import Response
from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.openapi import APIBlueprint, problems
from app.api.pages import PageQuery
from app.api.schemas import StrictModel
from app.domain.timefmt import rfc3339
from app.models import BlocklistEntry
from app.representation import Document
from app.services import blocklist

bp = APIBlueprint(
    "blocklist", __name__, url_prefix="/v1/blocklist", abp_tags=[Tag(name="blocklist")], abp_security=BEARER_SECURITY
)


class EntryRequest(StrictModel):
    type: Literal["email", "phone", "rut", "plate", "ip"]
    value: str = Field(min_length=1, max_length=320)
    reason: str | None = Field(default=None, max_length=500, description="For admins; never shown to residents.")
    building_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None


class EntryDocument(Document):
    id: str
    scope: str
    type: str
    value: str
    reason: str | None
    building_id: str | None
    organization_id: str | None
    created_at: str

    @classmethod
    def of(cls, entry: BlocklistEntry) -> EntryDocument:
        return cls(
            id=str(entry.id),
            scope=str(entry.scope),
            type=str(entry.type),
            value=entry.value,
            reason=entry.reason,
            building_id=str(entry.building_id) if entry.building_id else None,
            organization_id=str(entry.organization_id) if entry.organization_id else None,
            created_at=rfc3339(entry.created_at) or "",
        )


class EntryPage(Document):
    items: list[EntryDocument]
    next_cursor: str | None


class EntryPath(BaseModel):
    entry_id: uuid.UUID


class EntryQuery(PageQuery):
    building_id: uuid.UUID | None = Field(default=None, description="Entries that apply to this building.")


@bp.post("", responses={201: EntryDocument, **problems(404, 409)})
@login_required
def add_blocklist_entry(body: EntryRequest) -> tuple[dict[str, object], int]:
    """Ban a value: in a building, in an organization, or (neither id; platform_admin) everywhere."""
    entry = blocklist.add(current_principal(), blocklist.EntryFields(**body.model_dump()), request_actor())
    return EntryDocument.of(entry).model_dump(mode="json"), 201


@bp.get("", responses={200: EntryPage, **problems(404)})
@login_required
def list_blocklist_entries(query: EntryQuery) -> dict[str, object]:
    """Entries you may see; with ``building_id``, those that apply to that building.

    Platform staff: every entry. org_admin: the organization's and its buildings'. building_admin:
    their buildings' and their organization's organization-wide ones. Anyone else: 403.
    """
    rows, next_cursor = blocklist.list_entries(
        current_principal(), query.building_id, limit=query.limit, cursor=query.cursor, actor=request_actor()
    )
    return EntryPage(items=[EntryDocument.of(e) for e in rows], next_cursor=next_cursor).model_dump(mode="json")


@bp.delete("/<entry_id>", responses={204: None})
@login_required
def remove_blocklist_entry(path: EntryPath) -> Response:
    """Lift a ban."""
    blocklist.remove(current_principal(), path.entry_id, request_actor())
    return Response(status=204)
