"""``/v1/organizations``: operators, their staff and their buildings, and organization stats."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

from flask_openapi3 import Tag
from pydantic import BaseModel, Field, field_validator

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.openapi import APIBlueprint, problems
from app.api.pages import PageQuery
from app.api.schemas import Address, Email, JsonInt, StrictModel, Title
from app.api.stats import OrganizationStats, StatsQuery, stats_window
from app.domain.timefmt import rfc3339
from app.models import Building, Organization
from app.representation import Document
from app.services import organizations, staff, stats

bp = APIBlueprint(
    "organizations",
    __name__,
    url_prefix="/v1/organizations",
    abp_tags=[Tag(name="organizations")],
    abp_security=BEARER_SECURITY,
)


class OrganizationPath(BaseModel):
    organization_id: uuid.UUID


class OrganizationRequest(StrictModel):
    name: Title


class OrganizationDocument(Document):
    id: str
    name: str

    @classmethod
    def of(cls, organization: Organization) -> OrganizationDocument:
        return cls(id=str(organization.id), name=organization.name)


class MemberRequest(StrictModel):
    email: Email
    password: str | None = Field(default=None, max_length=1024)
    role: Literal["org_admin", "building_admin", "concierge"]
    building_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)


class MemberCreated(Document):
    user_id: str
    membership_id: str


def _validate_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("unknown IANA timezone") from exc
    return value


class BuildingRequest(StrictModel):
    name: Title
    address: Address
    timezone: str | None = Field(default=None, max_length=64, examples=["America/Santiago"])
    contact_email: Email
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

    _tz = field_validator("timezone")(_validate_timezone)


class BuildingDocument(Document):
    id: str
    organization_id: str
    name: str
    address: str
    timezone: str
    contact_email: str
    commission_rate: str
    default_base_price_clp: int
    max_upcoming_bookings_per_resident: int
    is_active: bool
    created_at: str

    @classmethod
    def of(cls, building: Building) -> BuildingDocument:
        return cls(
            id=str(building.id),
            organization_id=str(building.organization_id),
            name=building.name,
            address=building.address,
            timezone=building.timezone,
            contact_email=building.contact_email,
            commission_rate=format(building.commission_rate, "f"),
            default_base_price_clp=building.default_base_price_clp,
            max_upcoming_bookings_per_resident=building.max_upcoming_bookings_per_resident,
            is_active=building.is_active,
            created_at=rfc3339(building.created_at) or "",
        )


class BuildingPage(Document):
    items: list[BuildingDocument]
    next_cursor: str | None


@bp.post("", responses={201: OrganizationDocument, **problems(409)})
@login_required
def create_organization(body: OrganizationRequest) -> tuple[dict[str, object], int]:
    """Create an organization (platform_admin)."""
    organization = organizations.create_organization(current_principal(), body.name, request_actor())
    return OrganizationDocument.of(organization).model_dump(mode="json"), 201


@bp.get("/<organization_id>", responses={200: OrganizationDocument})
@login_required
def get_organization(path: OrganizationPath) -> dict[str, object]:
    """An organization you belong to."""
    organization = organizations.get_organization(current_principal(), path.organization_id, request_actor())
    return OrganizationDocument.of(organization).model_dump(mode="json")


@bp.post("/<organization_id>/members", responses={201: MemberCreated, **problems(409)})
@login_required
def add_member(path: OrganizationPath, body: MemberRequest) -> tuple[dict[str, object], int]:
    """Give a person a staff role (org_admin); a new account is created when the e-mail has none."""
    membership = organizations.add_member(
        current_principal(),
        path.organization_id,
        email=body.email,
        password=body.password,
        role=body.role,
        building_ids=body.building_ids,
        actor=request_actor(),
    )
    return MemberCreated(user_id=str(membership.user_id), membership_id=str(membership.id)).model_dump(mode="json"), 201


class MemberDocument(Document):
    membership_id: str
    user_id: str
    email: str
    role: str
    building_ids: list[str]


class MemberPage(Document):
    items: list[MemberDocument]
    next_cursor: str | None


@bp.get("/<organization_id>/members", responses={200: MemberPage})
@login_required
def list_members(path: OrganizationPath, query: PageQuery) -> dict[str, object]:
    """The organization's staff memberships, oldest first (org_admin, platform_admin)."""
    items, next_cursor = staff.list_members(
        current_principal(), path.organization_id, limit=query.limit, cursor=query.cursor
    )
    return MemberPage.model_validate({"items": items, "next_cursor": next_cursor}).model_dump(mode="json")


@bp.post("/<organization_id>/buildings", responses={201: BuildingDocument, **problems(409)})
@login_required
def create_building(path: OrganizationPath, body: BuildingRequest) -> tuple[dict[str, object], int]:
    """Add a building to the organization (org_admin; ``commission_rate``: platform_admin)."""
    building = organizations.create_building(
        current_principal(), path.organization_id, organizations.BuildingFields(**body.model_dump()), request_actor()
    )
    return BuildingDocument.of(building).model_dump(mode="json"), 201


@bp.get("/<organization_id>/buildings", responses={200: BuildingPage})
@login_required
def list_buildings(path: OrganizationPath, query: PageQuery) -> dict[str, object]:
    """The organization's buildings you may see."""
    rows, next_cursor = organizations.list_buildings(
        current_principal(), path.organization_id, limit=query.limit, cursor=query.cursor, actor=request_actor()
    )
    return BuildingPage(items=[BuildingDocument.of(b) for b in rows], next_cursor=next_cursor).model_dump(mode="json")


@bp.get("/<organization_id>/stats", responses={200: OrganizationStats})
@login_required
def get_organization_stats(path: OrganizationPath, query: StatsQuery) -> dict[str, object]:
    """Bookings, revenue, commission and occupancy, summed over the buildings you may see."""
    start, end = stats_window(query)
    summary = stats.organization_stats(current_principal(), path.organization_id, start, end, request_actor())
    return OrganizationStats.model_validate(summary).model_dump(mode="json")
