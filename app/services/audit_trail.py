"""Reading the audit trail (``GET /v1/audit-logs``): platform_admin everything, org_admin its organization's.

An audit row names its entity by type and id, not by organization, so "the organization's
entities" is a condition per entity type (``ENTITY_SCOPES``): the organization itself, its
buildings and everything of a building (residents, bookings, blocks, pricing rules, building and
organization blocklist entries), its memberships, and the users who are its residents or staff.
Rows about sessions, jobs and the keyring are nobody's organization's: platform_admin only.

Metadata never holds personal data (``app/models/audit.py``); the ip is shown to platform_admin
only (security investigations), never to an organization. Rows scrubbed by anonymization read
``scrubbed: true`` with blanked metadata and no ip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, cast, false, or_, select, union

from app.models import (
    AuditLog,
    AvailabilityBlock,
    BlocklistEntry,
    Booking,
    Building,
    Membership,
    PricingRule,
    Resident,
)
from app.models.pagination import paginate
from app.security import rbac
from app.security.rbac import Capability, Principal


def _text(column: Any) -> Any:
    return cast(column, String)


def _buildings(orgs: list[uuid.UUID]) -> Select[Any]:
    return select(Building.id).where(Building.organization_id.in_(orgs))


def _of_building(model: Any) -> Callable[[list[uuid.UUID]], Select[Any]]:
    return lambda orgs: select(_text(model.id)).where(model.building_id.in_(_buildings(orgs)))


#: entity_type -> the ids (as text) of that type's rows belonging to the given organizations.
ENTITY_SCOPES: dict[str, Callable[[list[uuid.UUID]], Any]] = {
    "organization": lambda orgs: [str(o) for o in orgs],
    "building": lambda orgs: select(_text(Building.id)).where(Building.organization_id.in_(orgs)),
    "resident": _of_building(Resident),
    "booking": _of_building(Booking),
    "availability_block": _of_building(AvailabilityBlock),
    "pricing_rule": _of_building(PricingRule),
    "blocklist_entry": lambda orgs: select(_text(BlocklistEntry.id)).where(
        or_(BlocklistEntry.organization_id.in_(orgs), BlocklistEntry.building_id.in_(_buildings(orgs)))
    ),
    "membership": lambda orgs: select(_text(Membership.id)).where(Membership.organization_id.in_(orgs)),
    "user": lambda orgs: union(
        select(_text(Resident.user_id)).where(Resident.building_id.in_(_buildings(orgs))),
        select(_text(Membership.user_id)).where(Membership.organization_id.in_(orgs)),
    ),
}


def of_organizations(orgs: Collection[uuid.UUID]) -> Any:
    """SQL: audit rows whose entity belongs to one of ``orgs``."""
    if not orgs:
        return false()
    ids = sorted(orgs)
    return or_(
        *(and_(AuditLog.entity_type == kind, AuditLog.entity_id.in_(rows(ids))) for kind, rows in ENTITY_SCOPES.items())
    )


@dataclass(frozen=True)
class AuditFilters:
    entity_type: str | None = None
    entity_id: str | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_audit_logs(
    principal: Principal, filters: AuditFilters, *, limit: int, cursor: str | None
) -> tuple[list[AuditLog], str | None, bool]:
    """A page of rows newest first; and whether the caller may see ips (platform_admin)."""
    rbac.require(principal, Capability.READ_AUDIT)
    everywhere = rbac.can(principal, Capability.READ_AUDIT, rbac.PLATFORM_SCOPE)
    query = select(AuditLog)
    if not everywhere:
        query = query.where(of_organizations(principal.org_ids("org_admin")))
    conditions = [
        (filters.entity_type, lambda v: AuditLog.entity_type == v),
        (filters.entity_id, lambda v: AuditLog.entity_id == v),
        (filters.actor_id, lambda v: AuditLog.actor_id == v),
        (filters.action, lambda v: AuditLog.action == v),
        (filters.since, lambda v: AuditLog.occurred_at >= v),
        (filters.until, lambda v: AuditLog.occurred_at < v),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition(value))
    keys = [AuditLog.occurred_at, AuditLog.id]
    rows, next_cursor = paginate(query, keys, limit=limit, cursor=cursor, descending=True)
    return rows, next_cursor, everywhere
