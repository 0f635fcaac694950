"""Pricing a block from the database: the building's rules and commission through ``domain.pricing``.

The same function prices search results (the stored ``price_clp``), quotes and bookings.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Uuid, bindparam, select

from app.domain import pricing
from app.extensions import db
from app.models import AvailabilityBlock, Building, PricingRule

#: The building's active rules at a moment; built once (every booking and quote runs it).
_ACTIVE_RULES = select(PricingRule).where(
    PricingRule.building_id == bindparam("building_id", type_=Uuid),
    PricingRule.is_active,
    PricingRule.starts_at <= bindparam("at", type_=DateTime(timezone=True)),
    PricingRule.ends_at > bindparam("at", type_=DateTime(timezone=True)),
)


def active_rules(building_id: uuid.UUID, at: datetime) -> list[PricingRule]:
    return list(db.session.execute(_ACTIVE_RULES, {"building_id": building_id, "at": at}).scalars())


def price_block(block: AvailabilityBlock, building: Building) -> tuple[pricing.Price, PricingRule | None]:
    rule = pricing.applicable_rule(active_rules(building.id, block.start_at), block.start_at)
    price = pricing.quote(block.base_price_clp, pricing.multiplier_of(rule), building.commission_rate)
    return price, rule  # type: ignore[return-value]
