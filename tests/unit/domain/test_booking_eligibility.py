"""Who may book what, when: the vectors of ``domain.bookings.eligibility`` (DOMAIN.md "Bookings")."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.bookings import BookingFacts, eligibility

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOME, ELSEWHERE = uuid.uuid4(), uuid.uuid4()

#: A booking that breaks no rule: verified resident, a block of their building tomorrow, free,
#: one upcoming booking of three allowed, nothing on the blocklist.
OK = BookingFacts(
    now=NOW,
    resident_verified=True,
    resident_building_id=HOME,
    block_building_id=HOME,
    block_start=NOW + timedelta(days=1),
    block_available=True,
    building_active=True,
    upcoming_bookings=1,
    max_upcoming_bookings=3,
    blocklisted=False,
)

VECTORS = [
    ("eligible", {}, None),
    ("the last slot of the limit", {"upcoming_bookings": 2}, None),
    ("exactly 30 days ahead", {"block_start": NOW + timedelta(days=30)}, None),
    ("a second after now", {"block_start": NOW + timedelta(seconds=1)}, None),
    ("unverified", {"resident_verified": False}, "resident-not-verified"),
    ("no such block", {"block_building_id": None, "block_start": None}, "not-found"),
    ("another building's block", {"block_building_id": ELSEWHERE}, "not-found"),
    ("archived building", {"building_active": False}, "spot-unavailable"),
    ("starts now", {"block_start": NOW}, "block-in-past"),
    ("started", {"block_start": NOW - timedelta(hours=1)}, "block-in-past"),
    ("beyond the horizon", {"block_start": NOW + timedelta(days=30, seconds=1)}, "spot-unavailable"),
    ("taken or blocked", {"block_available": False}, "spot-unavailable"),
    ("at the limit", {"upcoming_bookings": 3}, "booking-limit-reached"),
    ("over the limit", {"upcoming_bookings": 5}, "booking-limit-reached"),
    ("a limit of zero", {"upcoming_bookings": 0, "max_upcoming_bookings": 0}, "booking-limit-reached"),
    ("blocklisted", {"blocklisted": True}, "blocked"),
    # the first broken rule wins, in API.md's order
    ("unverified, elsewhere", {"resident_verified": False, "block_building_id": ELSEWHERE}, "resident-not-verified"),
    ("elsewhere, archived", {"block_building_id": ELSEWHERE, "building_active": False}, "not-found"),
    ("archived, in the past", {"building_active": False, "block_start": NOW - timedelta(days=1)}, "spot-unavailable"),
    ("past, taken", {"block_start": NOW - timedelta(days=1), "block_available": False}, "block-in-past"),
    ("taken, at the limit", {"block_available": False, "upcoming_bookings": 3}, "spot-unavailable"),
    ("at the limit, blocklisted", {"upcoming_bookings": 3, "blocklisted": True}, "booking-limit-reached"),
]


@pytest.mark.parametrize(("case", "changes", "slug"), VECTORS, ids=[v[0] for v in VECTORS])
def test_eligibility_vectors(case, changes, slug):
    refusal = eligibility(dataclasses.replace(OK, **changes))
    if slug is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.slug == slug and refusal.detail


def test_a_missing_block_needs_no_other_fact():
    """The service reads the limit and the blocklist only for a block of the resident's building."""
    facts = BookingFacts(now=NOW, resident_verified=True, resident_building_id=HOME, block_building_id=None)
    assert eligibility(facts).slug == "not-found"  # type: ignore[union-attr]


def test_the_limit_refusal_says_how_many():
    refusal = eligibility(dataclasses.replace(OK, upcoming_bookings=3))
    assert refusal is not None and "3" in refusal.detail
