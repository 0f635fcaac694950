"""``/v1/buildings/{id}``: a building, its units, spots, residents and stats."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

from flask_openapi3 import Tag
from pydantic import BaseModel, Field, field_validator

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.openapi import APIBlueprint, problems
from app.api.organizations import BuildingDocument, _validate_timezone
from app.api.pages import PageQuery
from app.api.residents import ResidentDocument, ResidentPage
from app.api.schemas import Address, Code, Email, JsonBool, JsonInt, StrictModel, Title
from app.api.stats import StatsQuery, StatsResponse, stats_window
from app.models import Unit, VisitorSpot
from app.problems import Problem
from app.representation import Document
from app.services import inventory, organizations, residents, stats

bp = APIBlueprint(
    "buildings", __name__, url_prefix="/v1/buildings", abp_tags=[Tag(name="buildings")], abp_security=BEARER_SECURITY
)


class BuildingPath(BaseModel):
    building_id: uuid.UUID


class BuildingPatch(StrictModel):
    name: Title | None = None
    address: Address | None = None
    timezone: str | None = Field(default=None, max_length=64)
    contact_email: Email | None = None
    commission_rate: Decimal | None = Field(
        default=None,
        ge=0,
        lt=1,
        max_digits=5,
        decimal_places=4,
        description="The platform's share of each booking: platform_admin only (anyone else: 403).",
    )
    default_base_price_clp: JsonInt | None = Field(default=None, ge=0, le=100_000_000)
    max_upcoming_bookings_per_resident: JsonInt | None = Field(default=None, ge=0, le=1000)
    is_active: JsonBool | None = Field(default=None, description="false archives the building (history is kept)")

    _tz = field_validator("timezone")(_validate_timezone)


class UnitRequest(StrictModel):
    unit_number: Code
    floor: JsonInt | None = Field(default=None, ge=-20, le=300)


class UnitDocument(Document):
    id: str
    building_id: str
    unit_number: str
    floor: int | None

    @classmethod
    def of(cls, unit: Unit) -> UnitDocument:
        return cls(id=str(unit.id), building_id=str(unit.building_id), unit_number=unit.unit_number, floor=unit.floor)


class UnitPage(Document):
    items: list[UnitDocument]
    next_cursor: str | None


class SpotRequest(StrictModel):
    spot_number: Code
    description: str | None = Field(default=None, max_length=500)


class SpotDocument(Document):
    id: str
    building_id: str
    spot_number: str
    description: str | None
    is_active: bool

    @classmethod
    def of(cls, spot: VisitorSpot) -> SpotDocument:
        return cls(
            id=str(spot.id),
            building_id=str(spot.building_id),
            spot_number=spot.spot_number,
            description=spot.description,
            is_active=spot.is_active,
        )


class SpotPage(Document):
    items: list[SpotDocument]
    next_cursor: str | None


class ResidentListQuery(PageQuery):
    status: Literal["pending_verification", "verified"] | None = None


@bp.get("/<building_id>", responses={200: BuildingDocument})
@login_required
def get_building(path: BuildingPath) -> dict[str, object]:
    """A building you work in or live in."""
    building = organizations.read_building(current_principal(), path.building_id, request_actor())
    return BuildingDocument.of(building).model_dump(mode="json")


@bp.patch("/<building_id>", responses={200: BuildingDocument, **problems(409)})
@login_required
def update_building(path: BuildingPath, body: BuildingPatch) -> dict[str, object]:
    """Change a building's settings (org_admin, building_admin; ``commission_rate``: platform_admin)."""
    changes = body.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        nulls = [name for name, value in changes.items() if value is None]
        raise Problem(
            "validation-error",
            "These fields cannot be null.",
            errors=[{"pointer": f"/{name}", "detail": "cannot be null"} for name in nulls],
        )
    building = organizations.update_building(current_principal(), path.building_id, changes, request_actor())
    return BuildingDocument.of(building).model_dump(mode="json")


@bp.post("/<building_id>/units", responses={201: UnitDocument, **problems(409)})
@login_required
def create_unit(path: BuildingPath, body: UnitRequest) -> tuple[dict[str, object], int]:
    """Add a unit (unit numbers are unique per building)."""
    unit = inventory.create_unit(current_principal(), path.building_id, body.unit_number, body.floor, request_actor())
    return UnitDocument.of(unit).model_dump(mode="json"), 201


@bp.get("/<building_id>/units", responses={200: UnitPage})
@login_required
def list_units(path: BuildingPath, query: PageQuery) -> dict[str, object]:
    rows, next_cursor = inventory.list_units(
        current_principal(), path.building_id, limit=query.limit, cursor=query.cursor, actor=request_actor()
    )
    return UnitPage(items=[UnitDocument.of(u) for u in rows], next_cursor=next_cursor).model_dump(mode="json")


@bp.post("/<building_id>/spots", responses={201: SpotDocument, **problems(409)})
@login_required
def create_spot(path: BuildingPath, body: SpotRequest) -> tuple[dict[str, object], int]:
    """Add a visitor spot (spot numbers are unique per building)."""
    spot = inventory.create_spot(
        current_principal(), path.building_id, body.spot_number, body.description, request_actor()
    )
    return SpotDocument.of(spot).model_dump(mode="json"), 201


@bp.get("/<building_id>/spots", responses={200: SpotPage})
@login_required
def list_spots(path: BuildingPath, query: PageQuery) -> dict[str, object]:
    rows, next_cursor = inventory.list_spots(
        current_principal(), path.building_id, limit=query.limit, cursor=query.cursor, actor=request_actor()
    )
    return SpotPage(items=[SpotDocument.of(s) for s in rows], next_cursor=next_cursor).model_dump(mode="json")


@bp.get("/<building_id>/residents", responses={200: ResidentPage})
@login_required
def list_residents(path: BuildingPath, query: ResidentListQuery) -> dict[str, object]:
    """The building's residents, with their personal data (the building's staff)."""
    rows, next_cursor = residents.list_residents(
        current_principal(),
        path.building_id,
        status=query.status,
        limit=query.limit,
        cursor=query.cursor,
        actor=request_actor(),
    )
    items = [ResidentDocument.of(*row) for row in rows]
    return ResidentPage(items=items, next_cursor=next_cursor).model_dump(mode="json")


@bp.get("/<building_id>/stats", responses={200: StatsResponse})
@login_required
def get_building_stats(path: BuildingPath, query: StatsQuery) -> dict[str, object]:
    """Bookings by status, revenue, commission and occupancy of blocks starting in [from, to)."""
    start, end = stats_window(query)
    summary = stats.building_stats(current_principal(), path.building_id, start, end, request_actor())
    return StatsResponse.model_validate(summary).model_dump(mode="json")
