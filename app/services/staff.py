"""Staff management by an organization's own admins: listing and removing memberships, banning residents.

The principal is loaded from the database on every request (``app.services.auth``), so a removed
membership is gone from that person's very next request, on every session, with nothing to
revoke. An organization keeps at least one org_admin: removing the last one is 409 ``conflict``
(the org_admin memberships are locked while counted, so two admins removing each other at once
cannot both succeed).

Bans (``POST /v1/admin/users/{id}/ban``) follow ``rbac.of_user`` (``person_scopes``): a
platform_admin bans anyone, an org_admin the residents of its organization's buildings; anyone
else (another organization's resident, any staff or platform account) is 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select

from app.extensions import db
from app.models import Building, Membership, MembershipRole, Resident, User, membership_buildings
from app.models.pagination import paginate
from app.problems import Problem
from app.security import rbac
from app.security.rbac import Capability, Principal
from app.services import audit, users
from app.services.organizations import organization_in_scope


def list_members(
    principal: Principal, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The organization's memberships, oldest first, each with the person's e-mail and buildings."""
    organization_in_scope(principal, organization_id, Capability.MANAGE_STAFF)
    query = select(Membership).where(Membership.organization_id == organization_id)
    rows, next_cursor = paginate(query, [Membership.created_at, Membership.id], limit=limit, cursor=cursor)
    emails = (
        dict(db.session.execute(select(User.id, User.email).where(User.id.in_({m.user_id for m in rows}))).all())
        if rows
        else {}
    )
    items = [
        {
            "membership_id": str(m.id),
            "user_id": str(m.user_id),
            "email": emails[m.user_id],
            "role": m.role,
            "building_ids": sorted(str(b.id) for b in m.buildings),
        }
        for m in rows
    ]
    return items, next_cursor


def remove_membership(principal: Principal, membership_id: uuid.UUID, actor: audit.Actor) -> None:
    """Delete a membership (its building list goes with it); the last org_admin stays (409)."""
    membership = db.session.get(Membership, membership_id, with_for_update=True)
    scope = rbac.of_organization(membership.organization_id if membership else None, missing="No such membership.")
    rbac.require(principal, Capability.MANAGE_STAFF, scope)
    assert membership is not None
    if membership.role == MembershipRole.ORG_ADMIN:
        admins = db.session.execute(
            select(Membership.id)
            .where(
                Membership.organization_id == membership.organization_id,
                Membership.role == MembershipRole.ORG_ADMIN,
            )
            .with_for_update()
        ).all()
        if len(admins) <= 1:
            raise Problem("conflict", "This is the organization's last org_admin; appoint another one first.")
    db.session.execute(delete(membership_buildings).where(membership_buildings.c.membership_id == membership.id))
    db.session.execute(delete(Membership).where(Membership.id == membership.id))
    audit.record(
        "membership.removed",
        actor,
        entity_type="membership",
        entity_id=membership.id,
        details={"organization_id": str(membership.organization_id), "role": membership.role},
    )
    audit.record("membership.removed", actor, entity_type="user", entity_id=membership.user_id)


def person_scopes(user_ids: list[uuid.UUID]) -> dict[uuid.UUID, rbac.Scope]:
    """``rbac.of_user`` of each id (absent ids included), in two queries.

    A resident is their building's; anyone else, and a resident who also holds a staff membership
    anywhere, is the platform's: an organization manages its residents, never another
    organization's staff.
    """
    rows = db.session.execute(
        select(User.id, Building)
        .outerjoin(Resident, Resident.user_id == User.id)
        .outerjoin(Building, Building.id == Resident.building_id)
        .where(User.id.in_(user_ids))
    ).all()
    staff = set(db.session.execute(select(Membership.user_id).where(Membership.user_id.in_(user_ids))).scalars())
    found = {user_id: (None if user_id in staff else building) for user_id, building in rows}
    return {u: rbac.of_user(u in found, found.get(u)) for u in user_ids}


def _require_over(principal: Principal, user_id: uuid.UUID) -> None:
    """A role that never manages people is refused first (403); an org_admin outside its scope gets 404."""
    rbac.require(principal, Capability.MANAGE_STAFF)
    rbac.require(principal, Capability.MANAGE_STAFF, person_scopes([user_id])[user_id])


def ban(principal: Principal, user_id: uuid.UUID, actor: audit.Actor, *, reason: str | None) -> User:
    _require_over(principal, user_id)
    return users.ban(user_id, actor, reason=reason)


def unban(principal: Principal, user_id: uuid.UUID, actor: audit.Actor) -> User:
    _require_over(principal, user_id)
    return users.unban(user_id, actor)
