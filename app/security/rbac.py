"""The authorization policy: every endpoint and every tenant query asks this module.

Scope always comes from the authenticated principal (its session's user, memberships and
resident profile, loaded per request), never from the request. A row outside the caller's scope
is reported as not found (404), so existence never leaks; a row inside the scope that the
caller's role may not act on is 403. Lists and stats are filtered by the same rules
(``building_scope``), so they never include or count what a 404 would hide.

Capabilities on a building:
- ``view``: see the building, its units, spots and availability. Everyone with any tie to it.
- ``manage``: change it (units, spots, blocks, generation, prices, resident verification).
  platform_admin, the organization's org_admin, a building_admin listing it.
- ``staff_read``: its residents, stats and audit. The managers, and support (read-only).
- ``gate``: check guests in and out. Concierges and building_admins listing it, org_admin.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import false, or_, true

from app.models import Building, Job, MembershipRole, PlatformRole, User
from app.problems import Problem

#: Roles whose holders must use a second factor. Every staff membership role requires it too.
MFA_REQUIRED_PLATFORM_ROLES = frozenset({PlatformRole.PLATFORM_ADMIN, PlatformRole.SUPPORT})

VIEW, MANAGE, STAFF_READ, GATE = "view", "manage", "staff_read", "gate"
ALL_BUILDING_CAPABILITIES = frozenset({VIEW, MANAGE, STAFF_READ, GATE})


@dataclass(frozen=True)
class MembershipScope:
    membership_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    building_ids: frozenset[uuid.UUID]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    session_id: str
    platform_role: str | None = None
    roles: tuple[str, ...] = field(default_factory=tuple)
    memberships: tuple[MembershipScope, ...] = field(default_factory=tuple)
    resident_id: uuid.UUID | None = None
    resident_building_id: uuid.UUID | None = None

    @property
    def is_platform_admin(self) -> bool:
        return self.platform_role == PlatformRole.PLATFORM_ADMIN

    @property
    def is_support(self) -> bool:
        return self.platform_role == PlatformRole.SUPPORT

    def org_ids(self, *roles: str) -> set[uuid.UUID]:
        return {m.organization_id for m in self.memberships if not roles or m.role in roles}

    def listed_buildings(self, *roles: str) -> set[uuid.UUID]:
        return {b for m in self.memberships if not roles or m.role in roles for b in m.building_ids}


def can_view_job(principal: Principal, job: Job) -> bool:
    """A job is visible to whoever submitted it, and to platform admins."""
    return (job.owner_user_id is not None and job.owner_user_id == principal.user_id) or principal.is_platform_admin


def mfa_required(user: User, *, has_membership: bool = False) -> bool:
    """Staff accounts see residents' personal data: a password alone must never be enough."""
    return user.platform_role in MFA_REQUIRED_PLATFORM_ROLES or has_membership


def require_platform_admin(principal: Principal) -> None:
    if not principal.is_platform_admin:
        raise Problem("forbidden", "This action needs the platform_admin role.")


# --- organizations --------------------------------------------------------------------------


def organization_capabilities(principal: Principal, organization_id: uuid.UUID) -> set[str]:
    if principal.is_platform_admin:
        return {VIEW, MANAGE, STAFF_READ}
    if principal.is_support:
        return {VIEW, STAFF_READ}
    if organization_id in principal.org_ids(MembershipRole.ORG_ADMIN):
        return {VIEW, MANAGE, STAFF_READ}
    if organization_id in principal.org_ids():
        return {VIEW}
    return set()


def require_organization(principal: Principal, organization_id: uuid.UUID, capability: str) -> None:
    capabilities = organization_capabilities(principal, organization_id)
    if not capabilities:
        raise Problem("not-found", "No such organization.")
    if capability not in capabilities:
        raise Problem("forbidden", "Your role does not allow this on the organization.")


# --- buildings ------------------------------------------------------------------------------


def building_capabilities(principal: Principal, building: Building) -> set[str]:
    if principal.is_platform_admin:
        return set(ALL_BUILDING_CAPABILITIES)
    capabilities: set[str] = set()
    if principal.is_support:
        capabilities |= {VIEW, STAFF_READ}
    if building.organization_id in principal.org_ids(MembershipRole.ORG_ADMIN):
        capabilities |= {VIEW, MANAGE, STAFF_READ, GATE}
    if building.id in principal.listed_buildings(MembershipRole.BUILDING_ADMIN):
        capabilities |= {VIEW, MANAGE, STAFF_READ, GATE}
    if building.id in principal.listed_buildings(MembershipRole.CONCIERGE):
        capabilities |= {VIEW, GATE}
    if principal.resident_building_id == building.id:
        capabilities |= {VIEW}
    return capabilities


def require_building(principal: Principal, building: Building | None, capability: str) -> Building:
    """The building if the caller may ``capability`` it; 404 if it is out of scope, 403 if only the role lacks."""
    capabilities = building_capabilities(principal, building) if building is not None else set()
    if building is None or not capabilities:
        raise Problem("not-found", "No such building.")
    if capability not in capabilities:
        raise Problem("forbidden", "Your role does not allow this in this building.")
    return building


def building_scope(principal: Principal, capability: str) -> Any:
    """SQL condition on ``Building`` matching exactly the buildings where the caller has ``capability``."""
    if principal.is_platform_admin or (principal.is_support and capability in (VIEW, STAFF_READ)):
        return true()
    org_admin_orgs = principal.org_ids(MembershipRole.ORG_ADMIN)
    managed = principal.listed_buildings(MembershipRole.BUILDING_ADMIN)
    conditions = [Building.organization_id.in_(org_admin_orgs), Building.id.in_(managed)]
    if capability in (VIEW, GATE):
        conditions.append(Building.id.in_(principal.listed_buildings(MembershipRole.CONCIERGE)))
    if capability == VIEW and principal.resident_building_id is not None:
        conditions.append(Building.id == principal.resident_building_id)
    return or_(*conditions) if conditions else false()
