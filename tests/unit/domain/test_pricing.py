"""Price vectors of DOMAIN.md and the rule choice, with integer/Decimal arithmetic only."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.pricing import applicable_rule, multiplier_of, quote

TEN, TWENTY = Decimal("0.10"), Decimal("0.20")


@pytest.mark.parametrize(
    ("base", "rate", "price", "commission", "share"),
    [
        (10000, TEN, 10000, 1000, 9000),
        (5000, TEN, 5000, 500, 4500),
        (1555, TEN, 1555, 156, 1399),
        (12345, TEN, 12345, 1235, 11110),
        (0, TEN, 0, 0, 0),
        (10000, TWENTY, 10000, 2000, 8000),
    ],
)
def test_domain_vectors(base, rate, price, commission, share):
    quoted = quote(base, Decimal(1), rate)
    assert (quoted.price_clp, quoted.commission_clp, quoted.building_share_clp) == (price, commission, share)


def test_a_two_times_rule_doubles_five_thousand():
    quoted = quote(5000, Decimal("2.0"), TEN)
    assert (quoted.price_clp, quoted.commission_clp) == (10000, 1000)


def test_prices_round_up():
    assert quote(1001, Decimal("1.5"), TEN).price_clp == 1502  # 1501.5 -> 1502
    assert quote(101, Decimal("0.1"), TEN).price_clp == 11  # 10.1 -> 11


@pytest.mark.parametrize("multiplier", [Decimal(0), Decimal("-1"), Decimal("10.0001")])
def test_multipliers_outside_zero_to_ten_are_refused(multiplier):
    with pytest.raises(ValueError):
        quote(5000, multiplier, TEN)


@given(
    base=st.integers(min_value=0, max_value=10_000_000),
    multiplier=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10), places=4),
    rate=st.decimals(min_value=Decimal(0), max_value=Decimal("0.9999"), places=4),
)
def test_price_and_commission_are_the_exact_ceilings(base, multiplier, rate):
    quoted = quote(base, multiplier, rate)
    assert quoted.price_clp - 1 < base * multiplier <= quoted.price_clp
    assert quoted.commission_clp - 1 < quoted.price_clp * rate <= quoted.commission_clp
    assert 0 <= quoted.commission_clp <= quoted.price_clp


@dataclass
class FakeRule:
    id: str
    priority: int
    starts_at: datetime
    ends_at: datetime
    multiplier: Decimal
    created_at: datetime


T0 = datetime(2026, 12, 31, 20, tzinfo=UTC)


def rule(name, priority, created_minutes, *, start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), m="2.0"):
    return FakeRule(
        name, priority, start, end, Decimal(m), T0 - timedelta(days=30) + timedelta(minutes=created_minutes)
    )


def test_the_higher_priority_rule_wins():
    assert applicable_rule([rule("low", 1, 5), rule("high", 9, 1)], T0).id == "high"


def test_equal_priority_goes_to_the_newest_rule():
    assert applicable_rule([rule("old", 5, 1), rule("new", 5, 2)], T0).id == "new"


def test_a_rule_applies_when_the_block_starts_inside_its_interval():
    ended = rule("ended", 9, 1, start=T0 - timedelta(days=2), end=T0)
    future = rule("future", 9, 1, start=T0 + timedelta(minutes=1), end=T0 + timedelta(days=1))
    assert applicable_rule([ended, future], T0) is None
    assert multiplier_of(None) == Decimal(1)
