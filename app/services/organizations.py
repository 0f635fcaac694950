"""Organizations, their staff memberships and their buildings.

A building's ``commission_rate`` is the platform's share of every booking: it is a term of the
platform's contract with the operator, not a setting of the operator's. So only a platform_admin
sets it (on create and on change); anyone else who sends the field is refused (403) and nothing
changes, whatever else the request held.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Building, Membership, MembershipRole, Organization
from app.models.pagination import paginate
from app.problems import Problem
from app.security import rbac
from app.security.rbac import Capability, Principal
from app.services import audit, users
from app.unit_of_work import stored


def create_organization(principal: Principal, name: str, actor: audit.Actor) -> Organization:
    rbac.require(principal, Capability.PLATFORM)
    organization = Organization(name=name.strip())
    db.session.add(organization)
    db.session.flush()
    audit.record("organization.created", actor, entity_type="organization", entity_id=organization.id)
    return stored(organization)


def organization_in_scope(principal: Principal, organization_id: uuid.UUID, capability: Capability) -> Organization:
    """The organization if it exists and the caller may ``capability`` it (404 / 403 otherwise)."""
    organization = db.session.get(Organization, organization_id)
    rbac.require(principal, capability, rbac.of_organization(organization.id if organization else None))
    return organization  # type: ignore[return-value]  # require raised if it is None


def get_organization(principal: Principal, organization_id: uuid.UUID, actor: audit.Actor) -> Organization:
    organization = organization_in_scope(principal, organization_id, Capability.VIEW)
    audit.record_support_read(principal, actor, "organization", organization_id)
    return organization


def add_member(
    principal: Principal,
    organization_id: uuid.UUID,
    *,
    email: str,
    password: str | None,
    role: str,
    building_ids: list[uuid.UUID],
    actor: audit.Actor,
) -> Membership:
    """Give a person (an existing user, or a new one created here) a staff role in the organization."""
    organization_in_scope(principal, organization_id, Capability.MANAGE)
    building_ids = list(dict.fromkeys(building_ids))
    if role == MembershipRole.ORG_ADMIN and building_ids:
        raise Problem(
            "validation-error",
            "An org_admin covers every building; do not list building_ids.",
            errors=[{"pointer": "/building_ids", "detail": "must be empty for org_admin"}],
        )
    if role != MembershipRole.ORG_ADMIN and not building_ids:
        raise Problem(
            "validation-error",
            f"A {role} needs the buildings they work in.",
            errors=[{"pointer": "/building_ids", "detail": "at least one building"}],
        )
    found = set(
        db.session.execute(
            select(Building.id).where(Building.id.in_(building_ids), Building.organization_id == organization_id)
        ).scalars()
    )
    if found != set(building_ids):
        raise Problem(
            "validation-error",
            "Every building must belong to this organization.",
            errors=[{"pointer": "/building_ids", "detail": "unknown building for this organization"}],
        )
    user = users.find_by_email(email)
    if user is None:
        if not password:
            raise Problem(
                "validation-error",
                "A new staff account needs a password.",
                errors=[{"pointer": "/password", "detail": "required for a new account"}],
            )
        user = users.create_user(email, password, actor)
    elif password:
        raise Problem(
            "validation-error",
            "This person already has an account; omit the password.",
            errors=[{"pointer": "/password", "detail": "must be omitted for an existing account"}],
        )
    duplicate = db.session.execute(
        select(Membership.id).where(
            Membership.user_id == user.id, Membership.organization_id == organization_id, Membership.role == role
        )
    ).first()
    if duplicate:
        raise Problem("conflict", "This person already has that role in this organization.")
    membership = Membership(user_id=user.id, organization_id=organization_id, role=role)
    membership.buildings = [db.session.get(Building, b) for b in building_ids]  # type: ignore[misc]
    db.session.add(membership)
    db.session.flush()
    audit.record(
        "membership.created",
        actor,
        entity_type="membership",
        entity_id=membership.id,
        details={"organization_id": str(organization_id), "role": role, "buildings": len(building_ids)},
    )
    return stored(membership)


@dataclass(frozen=True)
class BuildingFields:
    name: str
    address: str
    contact_email: str
    timezone: str | None = None
    commission_rate: Decimal | None = None
    default_base_price_clp: int | None = None
    max_upcoming_bookings_per_resident: int | None = None


#: Building fields only the platform sets (the platform's own terms with the operator).
PLATFORM_FIELDS = frozenset({"commission_rate"})


def require_platform_fields_right(principal: Principal, fields: set[str]) -> None:
    """403 when someone other than a platform_admin sends a field only the platform sets."""
    if fields & PLATFORM_FIELDS:
        rbac.require(principal, Capability.SET_COMMISSION)


def create_building(
    principal: Principal, organization_id: uuid.UUID, fields: BuildingFields, actor: audit.Actor
) -> Building:
    organization_in_scope(principal, organization_id, Capability.MANAGE)
    values = {k: v for k, v in fields.__dict__.items() if v is not None}
    require_platform_fields_right(principal, set(values))
    building = Building(organization_id=organization_id, **values)
    db.session.add(building)
    db.session.flush()
    audit.record(
        "building.created",
        actor,
        entity_type="building",
        entity_id=building.id,
        details={"organization_id": str(organization_id)},
    )
    return stored(building)


def get_building(
    principal: Principal, building_id: uuid.UUID, capability: Capability = Capability.VIEW, *, lock: bool = False
) -> Building:
    """The building if the caller may ``capability`` it; 404 if it is out of scope, 403 if only the role lacks."""
    building = db.session.get(Building, building_id, with_for_update=lock)
    rbac.require(principal, capability, rbac.of_building(building))
    return building  # type: ignore[return-value]  # require raised if it is None


def building_of(principal: Principal, row: Any, capability: Capability, *, missing: str) -> Building:
    """The building a row (spot, block, rule, resident...) belongs to, if the caller may ``capability`` it.

    A missing row and a row outside the caller's scope both answer 404 with ``missing``; a row in
    scope that the caller's role may not act on answers 403.
    """
    building = db.session.get(Building, row.building_id) if row is not None else None
    rbac.require(principal, capability, rbac.of_building(building, missing=missing))
    return building  # type: ignore[return-value]  # require raised if it is None


def read_building(principal: Principal, building_id: uuid.UUID, actor: audit.Actor, what: str = "building") -> Building:
    """A building read on behalf of a client (audited when support reads it)."""
    building = get_building(principal, building_id, Capability.VIEW)
    audit.record_support_read(principal, actor, what, building_id)
    return building


def update_building(
    principal: Principal, building_id: uuid.UUID, changes: dict[str, Any], actor: audit.Actor
) -> Building:
    building = get_building(principal, building_id, Capability.MANAGE, lock=True)
    require_platform_fields_right(principal, set(changes))
    for name, value in changes.items():
        setattr(building, name, value)
    audit.record(
        "building.updated", actor, entity_type="building", entity_id=building.id, details={"fields": sorted(changes)}
    )
    return stored(building)


def list_buildings(
    principal: Principal, organization_id: uuid.UUID, *, limit: int, cursor: str | None, actor: audit.Actor
) -> tuple[list[Building], str | None]:
    organization_in_scope(principal, organization_id, Capability.VIEW)
    query = select(Building).where(
        Building.organization_id == organization_id, rbac.scope_filter(principal, Building, Capability.VIEW)
    )
    audit.record_support_read(principal, actor, "organization.buildings", organization_id)
    return paginate(query, [Building.created_at, Building.id], limit=limit, cursor=cursor)


def unique_violation(exc: IntegrityError) -> bool:
    return getattr(getattr(exc, "orig", None), "pgcode", None) in ("23505", "23P01")
