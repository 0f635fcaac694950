"""Pricing a block from the database: the building's rules and commission through ``domain.pricing``.

The same function prices search results (the stored ``price_clp``), quotes and bookings.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from app.domain import pricing
from app.extensions import db
from app.models import AvailabilityBlock, Building, PricingRule


def active_rules(building_id: uuid.UUID, at: datetime) -> list[PricingRule]:
    return list(
        db.session.execute(
            select(PricingRule).where(
                PricingRule.building_id == building_id,
                PricingRule.is_active,
                PricingRule.starts_at <= at,
                PricingRule.ends_at > at,
            )
        ).scalars()
    )


def price_block(block: AvailabilityBlock, building: Building) -> tuple[pricing.Price, PricingRule | None]:
    rule = pricing.applicable_rule(active_rules(building.id, block.start_at), block.start_at)
    price = pricing.quote(block.base_price_clp, pricing.multiplier_of(rule), building.commission_rate)
    return price, rule  # type: ignore[return-value]
