"""Prices (DOMAIN.md "Inventory and prices"): integers and Decimal only, never float.

``price = ceil(base * multiplier)``; ``commission = ceil(price * commission_rate)``; the building
keeps the rest. The highest-priority rule whose interval contains the block's start wins; ties go
to the most recently created; no rule means multiplier 1. Search, quotes and bookings all call
these same functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

ONE = Decimal(1)
MAX_MULTIPLIER = Decimal(10)


@dataclass(frozen=True)
class Price:
    base_clp: int
    multiplier: Decimal
    price_clp: int
    commission_clp: int

    @property
    def building_share_clp(self) -> int:
        return self.price_clp - self.commission_clp


class Rule(Protocol):
    id: Any
    priority: int
    starts_at: datetime
    ends_at: datetime
    multiplier: Decimal
    created_at: datetime


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def quote(base_clp: int, multiplier: Decimal, commission_rate: Decimal) -> Price:
    if base_clp < 0:
        raise ValueError("base price must not be negative")
    if not (0 < multiplier <= MAX_MULTIPLIER):
        raise ValueError("multiplier must be in (0, 10]")
    price = _ceil(Decimal(base_clp) * multiplier)
    commission = _ceil(Decimal(price) * commission_rate)
    return Price(base_clp, multiplier, price, commission)


def applicable_rule(rules: Iterable[Rule], block_start: datetime) -> Rule | None:
    """The rule that prices a block starting at ``block_start`` (intervals are [starts_at, ends_at))."""
    candidates = [r for r in rules if r.starts_at <= block_start < r.ends_at]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.priority, r.created_at))


def multiplier_of(rule: Rule | None) -> Decimal:
    return rule.multiplier if rule is not None else ONE


__all__ = ["Price", "Rule", "applicable_rule", "multiplier_of", "quote"]
