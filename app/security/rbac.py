"""The authorization policy: the one permission decision every endpoint and tenant query asks.

Scope always comes from the authenticated principal (its session's user, memberships and
resident profile, loaded per request), never from the request. The decision has three answers:

- **out of scope** -> ``NotFound`` (404): the caller has no tie to the row that would let them see
  it, so they get exactly the answer an id that does not exist gets (existence never leaks);
- **in scope, wrong role** -> ``Forbidden`` (403);
- otherwise allowed.

How it is made, in three parts that never mix:

1. A **scope resolver** maps a row to its ``Scope``: the organization and building it belongs to,
   the resident or user who owns it, the capability that reveals it (``seen_with``) and the 404
   detail (``of_organization``, ``of_building``, ``of_booking``, ``of_blocklist_entry``,
   ``of_job``, ``of_user``, ``PLATFORM`` for the platform's own rows). Resolvers are pure: the service loads
   the rows, the resolver only reads their ids.
2. ``roles_toward`` names the **positional roles** the principal plays toward that scope
   (org_admin of its organization, concierge listing its building, its owner...).
3. ``POLICY`` (data, below) gives each positional role its capabilities. The principal holds the
   union; without ``scope.seen_with`` the row is out of scope (404), without the capability asked
   for it is 403.

``require(principal, capability)`` without a scope asks the role alone ("only residents book"):
403 or allowed, never 404. ``scope_filter(principal, Model, capability)`` is the same decision as
a SQL condition, so lists and stats never include or count what a 404 would hide.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, or_, select, true

from app.models import BlocklistEntry, Booking, Building, Job, MembershipRole, PlatformRole, User
from app.problems import Problem

#: Roles whose holders must use a second factor. Every staff membership role requires it too.
MFA_REQUIRED_PLATFORM_ROLES = frozenset({PlatformRole.PLATFORM_ADMIN, PlatformRole.SUPPORT})


class Capability(enum.StrEnum):
    """What a caller may do to a row in scope (or, with no row, anywhere)."""

    VIEW = "view"  # see a building or organization and what it offers (units, spots, availability)
    MANAGE = "manage"  # change it: units, spots, blocks, generation, prices, residents, blocklist
    STAFF_READ = "staff_read"  # its residents, stats, pricing rules and audit
    GATE = "gate"  # look bookings up at the gate, check guests in and out
    READ_BOOKING = "read_booking"  # see a booking and its visitor data
    CANCEL_BOOKING = "cancel_booking"  # cancel a booking before its block starts
    CANCEL_STARTED = "cancel_started"  # cancel a booking whose block has started (the building's staff)
    BOOK = "book"  # book a block of one's own building
    READ_BLOCKLIST = "read_blocklist"  # list blocklist entries, values and reasons
    READ_JOB = "read_job"  # see a job and its result
    PLATFORM = "platform"  # the platform's own actions: create organizations, ban users
    SET_COMMISSION = "set_commission"  # a building's commission_rate: the platform's contract term
    INTEGRATE = "integrate"  # an organization's webhook endpoints and its event catch-up log
    ANONYMIZE = "anonymize"  # erase a person's personal data (Law 21.719): a resident of the scope, or anyone
    READ_AUDIT = "read_audit"  # the audit trail of the scope's entities (GET /v1/audit-logs)
    MANAGE_STAFF = "manage_staff"  # list and remove the organization's memberships, ban its residents


class Role(enum.StrEnum):
    """A position toward one scope; the same person plays different roles toward different rows."""

    PLATFORM_ADMIN = "platform_admin"  # everywhere
    SUPPORT = "support"  # everywhere, read-only
    ORG_ADMIN = "org_admin"  # of the scope's organization (its buildings included)
    BUILDING_ADMIN = "building_admin"  # listing the scope's building
    CONCIERGE = "concierge"  # listing the scope's building
    ORG_BUILDING_ADMIN = "org_building_admin"  # a building_admin of the organization, on organization-wide rows
    ORG_CONCIERGE = "org_concierge"  # a concierge of the organization, on organization-wide rows
    RESIDENT = "resident"  # of the scope's building
    OWNER = "owner"  # the resident or user the row belongs to (a booking's booker, a job's submitter)


C = Capability
_STAFF = frozenset({C.VIEW, C.MANAGE, C.STAFF_READ, C.GATE, C.READ_BOOKING, C.CANCEL_BOOKING, C.CANCEL_STARTED})

#: The role -> capability table: the whole policy, as data.
POLICY: dict[Role, frozenset[Capability]] = {
    Role.PLATFORM_ADMIN: _STAFF
    | {
        C.READ_BLOCKLIST,
        C.READ_JOB,
        C.PLATFORM,
        C.SET_COMMISSION,
        C.INTEGRATE,
        C.ANONYMIZE,
        C.READ_AUDIT,
        C.MANAGE_STAFF,
    },
    Role.SUPPORT: frozenset({C.VIEW, C.STAFF_READ, C.READ_BOOKING, C.READ_BLOCKLIST}),
    Role.ORG_ADMIN: _STAFF | {C.READ_BLOCKLIST, C.INTEGRATE, C.ANONYMIZE, C.READ_AUDIT, C.MANAGE_STAFF},
    Role.BUILDING_ADMIN: _STAFF | {C.READ_BLOCKLIST},
    Role.CONCIERGE: frozenset({C.VIEW, C.GATE, C.READ_BOOKING, C.CANCEL_BOOKING, C.CANCEL_STARTED}),
    # organization-wide entries apply to their buildings too, so their building_admins read them
    Role.ORG_BUILDING_ADMIN: frozenset({C.VIEW, C.READ_BLOCKLIST}),
    Role.ORG_CONCIERGE: frozenset({C.VIEW}),
    Role.RESIDENT: frozenset({C.VIEW, C.BOOK}),
    Role.OWNER: frozenset({C.READ_BOOKING, C.CANCEL_BOOKING, C.READ_JOB}),
}

#: 403 details of capabilities whose refusal says more than "your role does not allow this".
FORBIDDEN_DETAIL: dict[Capability, str] = {
    C.GATE: "Gate actions need a concierge or building_admin of this building.",
    C.CANCEL_BOOKING: "Only the resident who booked or the building's staff can cancel.",
    C.BOOK: "Only residents can book.",
    C.READ_BLOCKLIST: "The blocklist is for platform staff and building managers.",
    C.PLATFORM: "This action needs the platform_admin role.",
    C.SET_COMMISSION: "Only the platform sets the commission rate.",
    C.INTEGRATE: "Webhook endpoints and the event log are for the organization's org_admin.",
    C.ANONYMIZE: "Anonymizing others needs the platform_admin role, or org_admin for its residents.",
    C.READ_AUDIT: "The audit trail is for platform_admin and org_admin.",
    C.MANAGE_STAFF: "Managing staff needs the org_admin role.",
}


class NotFound(Problem):
    """Out of the caller's scope, or absent: the same 404 either way."""

    def __init__(self, detail: str) -> None:
        super().__init__("not-found", detail)


class Forbidden(Problem):
    """In the caller's scope, but their role lacks the capability: 403."""

    def __init__(self, detail: str) -> None:
        super().__init__("forbidden", detail)


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


# --- scopes and their resolvers ---------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Where a row lives, who owns it, what reveals it and how its absence reads.

    ``organization_id`` without ``building_id`` is an organization-wide row; neither is the
    platform's own (global) row. ``absent`` is a row that does not exist: nobody is tied to it.
    """

    missing: str
    organization_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    owner_resident_id: uuid.UUID | None = None
    owner_user_id: uuid.UUID | None = None
    seen_with: Capability = Capability.VIEW
    forbidden: str = "Your role does not allow this."
    absent: bool = False


#: The platform's own rows (global blocklist entries): only platform staff are tied to them.
PLATFORM_SCOPE = Scope("Not found.")


def of_organization(organization_id: uuid.UUID | None, *, missing: str = "No such organization.") -> Scope:
    if organization_id is None:
        return Scope(missing, absent=True)
    return Scope(missing, organization_id, forbidden="Your role does not allow this on the organization.")


def of_building(building: Building | None, *, missing: str = "No such building.") -> Scope:
    """A building, or any row of one (unit, spot, block, pricing rule, resident): its building's scope."""
    if building is None:
        return Scope(missing, absent=True)
    return Scope(
        missing, building.organization_id, building.id, forbidden="Your role does not allow this in this building."
    )


def of_booking(booking: Booking | None, building: Building | None, *, missing: str = "No such booking.") -> Scope:
    """A booking: its booker and its building's staff see it; the building's other residents do not."""
    if booking is None or building is None:
        return Scope(missing, absent=True)
    return Scope(
        missing,
        building.organization_id,
        building.id,
        owner_resident_id=booking.resident_id,
        seen_with=C.READ_BOOKING,
        forbidden="Your role does not allow this on this booking.",
    )


def of_blocklist_entry(
    entry: BlocklistEntry | None, building: Building | None = None, *, missing: str = "No such blocklist entry."
) -> Scope:
    """An active entry: global (the platform's), organization-wide, or of a building (pass it)."""
    forbidden = "Your role does not allow removing this entry."
    if entry is None or not entry.is_active:
        return Scope(missing, absent=True)
    if entry.scope == "global":
        return Scope(missing, forbidden=forbidden)
    if entry.scope == "organization":
        return Scope(missing, entry.organization_id, forbidden=forbidden)
    if building is None or building.id != entry.building_id:
        return Scope(missing, absent=True)
    return Scope(missing, building.organization_id, building.id, forbidden=forbidden)


def of_job(job: Job | None, *, missing: str = "No such job.") -> Scope:
    """A job is its submitter's (and platform admins'); nobody else learns it exists."""
    if job is None:
        return Scope(missing, absent=True)
    return Scope(missing, owner_user_id=job.owner_user_id, seen_with=C.READ_JOB)


def of_user(exists: bool, building: Building | None = None, *, missing: str = "No such user.") -> Scope:
    """A person as the object of staff work (anonymization, a ban): a resident is their building's,
    anyone else is the platform's. Seen by whoever reads the building's residents (``STAFF_READ``);
    a concierge, a neighbour or another organization gets the 404 of an unknown id."""
    if not exists:
        return Scope(missing, absent=True)
    forbidden = "Your role does not allow this on this person."
    if building is None:
        return Scope(missing, seen_with=C.STAFF_READ, forbidden=forbidden)
    return Scope(missing, building.organization_id, building.id, seen_with=C.STAFF_READ, forbidden=forbidden)


# --- the decision -----------------------------------------------------------------------------


def roles_toward(principal: Principal | None, scope: Scope) -> frozenset[Role]:
    """The positional roles ``principal`` plays toward ``scope`` (none toward an absent row)."""
    if principal is None or scope.absent:
        return frozenset()
    roles: set[Role] = set()
    if principal.is_platform_admin:
        roles.add(Role.PLATFORM_ADMIN)
    if principal.is_support:
        roles.add(Role.SUPPORT)
    org, building = scope.organization_id, scope.building_id
    if org is not None and org in principal.org_ids(MembershipRole.ORG_ADMIN):
        roles.add(Role.ORG_ADMIN)
    if building is not None:
        if building in principal.listed_buildings(MembershipRole.BUILDING_ADMIN):
            roles.add(Role.BUILDING_ADMIN)
        if building in principal.listed_buildings(MembershipRole.CONCIERGE):
            roles.add(Role.CONCIERGE)
        if building == principal.resident_building_id:
            roles.add(Role.RESIDENT)
    elif org is not None:
        if org in principal.org_ids(MembershipRole.BUILDING_ADMIN):
            roles.add(Role.ORG_BUILDING_ADMIN)
        if org in principal.org_ids(MembershipRole.CONCIERGE):
            roles.add(Role.ORG_CONCIERGE)
    owns_as_resident = scope.owner_resident_id is not None and scope.owner_resident_id == principal.resident_id
    if owns_as_resident or (scope.owner_user_id is not None and scope.owner_user_id == principal.user_id):
        roles.add(Role.OWNER)
    return frozenset(roles)


def held_roles(principal: Principal | None) -> frozenset[Role]:
    """The roles the principal plays toward some row or other (for a decision without a row)."""
    if principal is None:
        return frozenset()
    roles: set[Role] = set()
    if principal.is_platform_admin:
        roles.add(Role.PLATFORM_ADMIN)
    if principal.is_support:
        roles.add(Role.SUPPORT)
    by_membership: dict[str, tuple[Role, ...]] = {
        MembershipRole.ORG_ADMIN: (Role.ORG_ADMIN,),
        MembershipRole.BUILDING_ADMIN: (Role.BUILDING_ADMIN, Role.ORG_BUILDING_ADMIN),
        MembershipRole.CONCIERGE: (Role.CONCIERGE, Role.ORG_CONCIERGE),
    }
    for membership in principal.memberships:
        roles.update(by_membership.get(membership.role, ()))
    if principal.resident_id is not None:
        roles.add(Role.RESIDENT)
    return frozenset(roles)


def capabilities(roles: Iterable[Role]) -> frozenset[Capability]:
    return frozenset(c for role in roles for c in POLICY[role])


def capabilities_on(principal: Principal | None, scope: Scope | None = None) -> frozenset[Capability]:
    """What ``principal`` may do to the row of ``scope`` (without a scope: anywhere, by role)."""
    return capabilities(held_roles(principal) if scope is None else roles_toward(principal, scope))


def can(principal: Principal | None, capability: Capability, scope: Scope | None = None) -> bool:
    """Whether ``require`` would allow it."""
    granted = capabilities_on(principal, scope)
    return capability in granted and (scope is None or scope.seen_with in granted)


def require(
    principal: Principal | None, capability: Capability, scope: Scope | None = None, *, detail: str | None = None
) -> None:
    """The decision: ``NotFound`` outside the caller's scope (or absent), ``Forbidden`` for the wrong role.

    Without a scope only the role is asked (a refusal is then always 403). ``detail`` overrides
    the 403's wording; the 404's is the scope's own, identical for an absent and a hidden row.
    """
    granted = capabilities_on(principal, scope)
    if scope is not None and scope.seen_with not in granted:
        raise NotFound(scope.missing)
    if capability not in granted:
        forbidden = scope.forbidden if scope is not None else "Your role does not allow this."
        raise Forbidden(detail or FORBIDDEN_DETAIL.get(capability, forbidden))


# --- the decision as SQL, for lists and stats ---------------------------------------------------


@dataclass(frozen=True)
class ScopeColumns:
    """How a table's rows map to scopes: the columns ``scope_filter`` compares.

    ``organization_id`` holds the organization of organization-wide rows only; rows of a building
    reach their organization through ``buildings`` unless ``building_organization_id`` has it.
    A row with neither column filled is the platform's own.
    """

    building_id: Any = None
    building_organization_id: Any = None
    organization_id: Any = None
    owner_resident_id: Any = None


SCOPE_COLUMNS: dict[type, ScopeColumns] = {
    Building: ScopeColumns(building_id=Building.id, building_organization_id=Building.organization_id),
    Booking: ScopeColumns(building_id=Booking.building_id, owner_resident_id=Booking.resident_id),
    BlocklistEntry: ScopeColumns(
        building_id=BlocklistEntry.building_id, organization_id=BlocklistEntry.organization_id
    ),
}


def scope_filter(principal: Principal, model: type, capability: Capability) -> Any:
    """SQL condition on ``model`` matching exactly the rows on which ``require`` allows ``capability``.

    Rows are matched on the capability asked (which, for every capability a list asks, also
    reveals the row: ``VIEW``, ``STAFF_READ``, ``GATE``, ``READ_BOOKING``, ``READ_BLOCKLIST``).
    """
    columns = SCOPE_COLUMNS[model]
    granting = {role for role, granted in POLICY.items() if capability in granted}
    if granting & held_roles(principal) & {Role.PLATFORM_ADMIN, Role.SUPPORT}:
        return true()
    conditions: list[Any] = []
    if columns.building_id is not None:
        buildings: set[uuid.UUID] = set()
        if Role.BUILDING_ADMIN in granting:
            buildings |= principal.listed_buildings(MembershipRole.BUILDING_ADMIN)
        if Role.CONCIERGE in granting:
            buildings |= principal.listed_buildings(MembershipRole.CONCIERGE)
        if Role.RESIDENT in granting and principal.resident_building_id is not None:
            buildings.add(principal.resident_building_id)
        if buildings:
            conditions.append(columns.building_id.in_(buildings))
        if Role.ORG_ADMIN in granting and (orgs := principal.org_ids(MembershipRole.ORG_ADMIN)):
            if columns.building_organization_id is not None:
                conditions.append(columns.building_organization_id.in_(orgs))
            else:
                conditions.append(
                    columns.building_id.in_(select(Building.id).where(Building.organization_id.in_(orgs)))
                )
    if columns.organization_id is not None:
        orgs = set()
        if Role.ORG_ADMIN in granting:
            orgs |= principal.org_ids(MembershipRole.ORG_ADMIN)
        if Role.ORG_BUILDING_ADMIN in granting:
            orgs |= principal.org_ids(MembershipRole.BUILDING_ADMIN)
        if Role.ORG_CONCIERGE in granting:
            orgs |= principal.org_ids(MembershipRole.CONCIERGE)
        if orgs:
            organization_wide = columns.organization_id.in_(orgs)
            if columns.building_id is not None:
                organization_wide = and_(organization_wide, columns.building_id.is_(None))
            conditions.append(organization_wide)
    if columns.owner_resident_id is not None and Role.OWNER in granting and principal.resident_id is not None:
        conditions.append(columns.owner_resident_id == principal.resident_id)
    return or_(*conditions) if conditions else false()


def mfa_required(user: User, *, has_membership: bool = False) -> bool:
    """Staff accounts see residents' personal data: a password alone must never be enough."""
    return user.platform_role in MFA_REQUIRED_PLATFORM_ROLES or has_membership
