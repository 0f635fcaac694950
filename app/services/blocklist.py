"""The blocklist: who may not book where (DOMAIN.md "Blocklist").

Entries are global (platform_admin), organization-wide (the organization's org_admin) or
building-level (the building's managers). Every booking is checked against the resident's
e-mail, phone and RUT, the requested plate and the request's IP, through blind indexes of the
normalized values, so ``ab-1234`` bans ``AB1234`` and a RUT banned with dots bans it without.
A match refuses the booking with ``blocked``; the reason is never shown to the resident.

Who sees which entries (values and reasons are personal data and moderation notes):

- platform staff (platform_admin, support) see every entry; support's list reads are audited;
- an org_admin sees their organization's entries and those of every building of it;
- a building_admin sees the entries of their listed buildings and their organization's
  organization-wide entries (those apply to their buildings too), and may remove only the former;
- global entries are the platform's: organization staff never see them (a removal answers 404);
- nobody else lists the blocklist: concierges and residents are refused (403, the wrong role),
  so a concierge never sees a value. The gate does not need the list: a banned booking is refused
  before it exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Uuid, and_, bindparam, or_, select, tuple_

from app.domain import normalize
from app.domain.bookings import InvalidPlate
from app.domain.identity import InvalidIdentity, normalize_email
from app.extensions import db
from app.models import BlocklistEntry, Building
from app.models.pagination import paginate
from app.problems import Problem
from app.security import rbac
from app.security.crypto import blind_index
from app.security.rbac import Capability, Principal
from app.services import audit
from app.services.organizations import get_building, organization_in_scope
from app.unit_of_work import stored

TYPES = ("email", "phone", "rut", "plate", "ip")
NORMALIZE = {
    "email": normalize_email,
    "phone": normalize.phone,
    "rut": normalize.rut,
    "plate": normalize.plate,
    "ip": normalize.ip,
}


def index_of(kind: str, value: str) -> bytes:
    """The blind index bookings are checked against (unscoped, so one entry bans everywhere it applies)."""
    return blind_index(kind, value)


@dataclass(frozen=True)
class EntryFields:
    type: str
    value: str
    reason: str | None
    building_id: uuid.UUID | None
    organization_id: uuid.UUID | None


def add(principal: Principal, fields: EntryFields, actor: audit.Actor) -> BlocklistEntry:
    if fields.building_id and fields.organization_id:
        raise Problem(
            "validation-error",
            "Give building_id or organization_id, not both.",
            errors=[{"pointer": "/organization_id", "detail": "not together with building_id"}],
        )
    try:
        normalized = NORMALIZE[fields.type](fields.value)
    except (InvalidIdentity, InvalidPlate) as exc:
        raise Problem("validation-error", str(exc), errors=[{"pointer": "/value", "detail": str(exc)}]) from exc
    if fields.building_id:
        scope, building = "building", get_building(principal, fields.building_id, Capability.MANAGE)
        organization_id = None
        building_id = building.id
    elif fields.organization_id:
        organization_in_scope(principal, fields.organization_id, Capability.MANAGE)
        scope, organization_id, building_id = "organization", fields.organization_id, None
    else:
        rbac.require(principal, Capability.PLATFORM)
        scope, organization_id, building_id = "global", None, None
    entry = BlocklistEntry(
        scope=scope,
        organization_id=organization_id,
        building_id=building_id,
        type=fields.type,
        value=normalized,
        value_bidx=index_of(fields.type, normalized),
        reason=fields.reason,
        created_by=principal.user_id,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        "blocklist.added",
        actor,
        entity_type="blocklist_entry",
        entity_id=entry.id,
        details={"scope": scope, "type": fields.type},
    )
    return stored(entry)


def list_entries(
    principal: Principal,
    building_id: uuid.UUID | None,
    *,
    limit: int,
    cursor: str | None,
    actor: audit.Actor,
) -> tuple[list[BlocklistEntry], str | None]:
    building = None
    if building_id is not None:  # 404 / 403 about that building first, like every building endpoint
        building = get_building(principal, building_id, Capability.READ_BLOCKLIST)
    rbac.require(principal, Capability.READ_BLOCKLIST)
    query = select(BlocklistEntry).where(
        BlocklistEntry.is_active, rbac.scope_filter(principal, BlocklistEntry, Capability.READ_BLOCKLIST)
    )
    if building is not None:
        query = query.where(applies_to(building))
    rows, next_cursor = paginate(query, [BlocklistEntry.created_at, BlocklistEntry.id], limit=limit, cursor=cursor)
    audit.record_support_read(principal, actor, "blocklist", building_id, audit.listed(rows))
    return rows, next_cursor


def applies_to(building: Building) -> Any:
    return _applies(building.organization_id, building.id)


def _applies(organization_id: Any, building_id: Any) -> Any:
    """Entries global, of that organization or of that building (values or bound parameters)."""
    return or_(
        BlocklistEntry.scope == "global",
        and_(BlocklistEntry.scope == "organization", BlocklistEntry.organization_id == organization_id),
        and_(BlocklistEntry.scope == "building", BlocklistEntry.building_id == building_id),
    )


def remove(principal: Principal, entry_id: uuid.UUID, actor: audit.Actor) -> None:
    """Retire an entry. Global entries are the platform's: organization staff get 404, like no entry."""
    entry = db.session.get(BlocklistEntry, entry_id, with_for_update=True)
    building = db.session.get(Building, entry.building_id) if entry is not None and entry.building_id else None
    rbac.require(principal, Capability.MANAGE, rbac.of_blocklist_entry(entry, building))
    entry.is_active = False  # type: ignore[union-attr]  # require raised if it is None
    audit.record("blocklist.removed", actor, entity_type="blocklist_entry", entity_id=entry.id)  # type: ignore[union-attr]


#: SQL EXISTS: a (type, blind index) pair banned globally, in the building's organization or in
#: it. Built once (every booking asks it); its parameters are ``match_parameters``.
MATCH_EXISTS = (
    select(BlocklistEntry.id)
    .where(
        BlocklistEntry.is_active,
        tuple_(BlocklistEntry.type, BlocklistEntry.value_bidx).in_(bindparam("blocklist_checks", expanding=True)),
        _applies(bindparam("blocklist_organization_id", type_=Uuid), bindparam("blocklist_building_id", type_=Uuid)),
    )
    .exists()
)


def match_parameters(building: Building, checks: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The parameters of ``MATCH_EXISTS`` for ``checks`` in ``building`` (the scopes of ``applies_to``)."""
    return {
        "blocklist_checks": checks,
        "blocklist_organization_id": building.organization_id,
        "blocklist_building_id": building.id,
    }
