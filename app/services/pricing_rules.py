"""Yield-management rules of a building (create, list, retire) and quotes.

A deleted rule is retired (``is_active`` false), not removed: bookings priced by it keep
pointing at it. Creating or retiring a rule starts a recalculation of the building's stored
prices, so search catches up with what a booking charges (bookings and quotes always price live,
with the same function).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.jobs import submit
from app.models import AvailabilityBlock, PricingRule
from app.models.pagination import paginate
from app.problems import Problem
from app.security.rbac import Capability, Principal
from app.services import audit, pricing
from app.services.organizations import building_of, get_building
from app.unit_of_work import stored


@dataclass(frozen=True)
class RuleFields:
    name: str
    priority: int
    starts_at: datetime
    ends_at: datetime
    multiplier: Decimal


def _refresh_prices(building_id: uuid.UUID, actor: audit.Actor) -> str:
    """A rule changed: recalculate the building's stored prices so search shows what booking charges."""
    return str(submit("pricing.recalculate", {"building_ids": [str(building_id)]}, actor)["job_id"])


def create_rule(
    principal: Principal, building_id: uuid.UUID, fields: RuleFields, actor: audit.Actor
) -> tuple[PricingRule, str]:
    """Create the rule; return it with the id of the recalculation job it started."""
    building = get_building(principal, building_id, Capability.MANAGE)
    if fields.ends_at <= fields.starts_at:
        raise Problem(
            "validation-error",
            "ends_at must be after starts_at.",
            errors=[{"pointer": "/ends_at", "detail": "after starts_at"}],
        )
    rule = PricingRule(building_id=building.id, created_by=principal.user_id, **fields.__dict__)
    db.session.add(rule)
    db.session.flush()
    audit.record(
        "pricing_rule.created",
        actor,
        entity_type="pricing_rule",
        entity_id=rule.id,
        details={"building_id": str(building.id), "priority": fields.priority, "multiplier": str(fields.multiplier)},
    )
    return stored(rule), _refresh_prices(building.id, actor)


def list_rules(
    principal: Principal, building_id: uuid.UUID, *, limit: int, cursor: str | None, actor: audit.Actor
) -> tuple[list[PricingRule], str | None]:
    """The building's active rules (its managers and support; support's reads are audited)."""
    get_building(principal, building_id, Capability.STAFF_READ)
    query = select(PricingRule).where(PricingRule.building_id == building_id, PricingRule.is_active)
    rows, next_cursor = paginate(query, [PricingRule.created_at, PricingRule.id], limit=limit, cursor=cursor)
    audit.record_support_read(principal, actor, "building.pricing_rules", building_id, audit.listed(rows))
    return rows, next_cursor


def delete_rule(principal: Principal, rule_id: uuid.UUID, actor: audit.Actor) -> str:
    """Retire the rule; return the id of the recalculation job it started."""
    rule = db.session.get(PricingRule, rule_id, with_for_update=True)
    live = rule if rule is not None and rule.is_active else None
    building = building_of(principal, live, Capability.MANAGE, missing="No such pricing rule.")
    assert rule is not None
    rule.is_active = False
    audit.record("pricing_rule.deleted", actor, entity_type="pricing_rule", entity_id=rule.id)
    return _refresh_prices(building.id, actor)


def quote(principal: Principal, block_id: uuid.UUID) -> dict[str, Any]:
    block = db.session.get(AvailabilityBlock, block_id)
    building = building_of(principal, block, Capability.VIEW, missing="No such availability block.")
    assert block is not None
    price, rule = pricing.price_block(block, building)
    return {
        "base_price_clp": price.base_clp,
        "multiplier": format(price.multiplier.normalize(), "f"),
        "price_clp": price.price_clp,
        "commission_clp": price.commission_clp,
        "rule_id": str(rule.id) if rule is not None else None,
    }
