"""Availability: manual blocks of a spot, block/unblock, generation jobs and search."""

from __future__ import annotations

import uuid
from typing import Literal

from flask_openapi3 import Tag
from pydantic import BaseModel, ConfigDict, Field

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.idempotency import idempotent
from app.api.openapi import APIBlueprint, problems
from app.api.pages import PageQuery
from app.api.schemas import JobAccepted, JsonInt, StrictModel, UtcDatetime
from app.domain.timefmt import rfc3339
from app.extensions import db
from app.jobs import submit
from app.models import AvailabilityBlock, BlockStatus, VisitorSpot
from app.representation import Document
from app.security.rbac import Capability
from app.services import inventory, organizations

bp = APIBlueprint(
    "availability", __name__, url_prefix="/v1", abp_tags=[Tag(name="availability")], abp_security=BEARER_SECURITY
)


class SpotPath(BaseModel):
    spot_id: uuid.UUID


class BlockPath(BaseModel):
    block_id: uuid.UUID


class BuildingPath(BaseModel):
    building_id: uuid.UUID


class BlockRequest(StrictModel):
    start: UtcDatetime
    end: UtcDatetime
    duration: Literal["11h", "23h"]
    base_price_clp: JsonInt = Field(ge=0, le=100_000_000)


class BlockDocument(Document):
    id: str
    spot_id: str
    spot_number: str
    start: str
    end: str
    duration: str
    base_price_clp: int
    price_clp: int
    status: str

    @classmethod
    def of(cls, block: AvailabilityBlock, spot_number: str) -> BlockDocument:
        return cls(
            id=str(block.id),
            spot_id=str(block.spot_id),
            spot_number=spot_number,
            start=rfc3339(block.start_at) or "",
            end=rfc3339(block.end_at) or "",
            duration=block.duration,
            base_price_clp=block.base_price_clp,
            price_clp=block.price_clp,
            status=str(block.status),
        )


class BlockPage(Document):
    items: list[BlockDocument]
    next_cursor: str | None


class AvailabilityQuery(PageQuery):
    model_config = ConfigDict(populate_by_name=True)

    from_: UtcDatetime | None = Field(
        default=None, alias="from", description="Blocks starting at or after; default now."
    )
    to: UtcDatetime | None = Field(default=None, description="Blocks starting before; default 30 days ahead.")
    duration: Literal["11h", "23h"] | None = None
    status: Literal["available", "reserved", "blocked"] | None = Field(default=None, description="Default available.")


def block_document(block: AvailabilityBlock) -> dict[str, object]:
    """A block just changed by this request (its spot is read by primary key, from the identity map)."""
    spot = db.session.get(VisitorSpot, block.spot_id)
    return BlockDocument.of(block, spot.spot_number if spot else "").model_dump(mode="json")


@bp.post("/spots/<spot_id>/blocks", responses={201: BlockDocument, **problems(409)})
@login_required
def create_block(path: SpotPath, body: BlockRequest) -> tuple[dict[str, object], int]:
    """A hand-made block for a spot; overlapping another block of the spot is 409."""
    block = inventory.create_block(
        current_principal(),
        path.spot_id,
        start=body.start,
        end=body.end,
        duration=body.duration,
        base_price_clp=body.base_price_clp,
        actor=request_actor(),
    )
    return block_document(block), 201


@bp.post("/availability-blocks/<block_id>/block", responses={200: BlockDocument, **problems(409)})
@login_required
def block_availability(path: BlockPath) -> dict[str, object]:
    """Take an available block off sale (staff)."""
    changed = inventory.set_block_status(
        current_principal(), path.block_id, target=BlockStatus.BLOCKED, actor=request_actor()
    )
    return block_document(changed)


@bp.post("/availability-blocks/<block_id>/unblock", responses={200: BlockDocument, **problems(409)})
@login_required
def unblock_availability(path: BlockPath) -> dict[str, object]:
    """Put a blocked block back on sale (staff)."""
    changed = inventory.set_block_status(
        current_principal(), path.block_id, target=BlockStatus.AVAILABLE, actor=request_actor()
    )
    return block_document(changed)


@bp.post("/buildings/<building_id>/availability/generate", responses={202: JobAccepted})
@login_required
@idempotent
def generate_availability(path: BuildingPath) -> tuple[dict[str, object], int, dict[str, str]]:
    """Generate the next 30 days of blocks (a job; result ``{"created", "skipped"}``)."""
    organizations.get_building(current_principal(), path.building_id, Capability.MANAGE)
    document = submit(
        "availability.generate",
        {"building_id": str(path.building_id)},
        request_actor(),
    )
    return document, 202, {"Location": document["status_url"]}


@bp.get("/buildings/<building_id>/availability", responses={200: BlockPage})
@login_required
def search_availability(path: BuildingPath, query: AvailabilityQuery) -> dict[str, object]:
    """Blocks of the building, soonest first (any member or resident of the building)."""
    rows, next_cursor = inventory.search_availability(
        current_principal(),
        path.building_id,
        start=query.from_,
        end=query.to,
        duration=query.duration,
        status=query.status,
        limit=query.limit,
        cursor=query.cursor,
        actor=request_actor(),
    )
    return BlockPage(items=[BlockDocument.of(b, n) for b, n in rows], next_cursor=next_cursor).model_dump(mode="json")
