"""The booking state machine and the rules around it (DOMAIN.md "Bookings"). Pure functions.

The state machine is the only way a status ever changes: every writer asks ``transition`` (or,
for set-based scheduled updates, ``sources_of``) before it writes.
"""

from __future__ import annotations

import enum
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta


class BookingStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    OVERSTAY = "overstay"


S = BookingStatus
TRANSITIONS: dict[BookingStatus, frozenset[BookingStatus]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.CHECKED_IN, S.NO_SHOW, S.CANCELLED}),
    S.CHECKED_IN: frozenset({S.CHECKED_OUT, S.OVERSTAY}),
    S.OVERSTAY: frozenset({S.CHECKED_OUT}),
    S.CANCELLED: frozenset(),
    S.CHECKED_OUT: frozenset(),
    S.NO_SHOW: frozenset(),
}
TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
#: Statuses that hold the block (a cancelled booking frees it).
LIVE = frozenset(set(BookingStatus) - {S.CANCELLED})
#: Statuses whose price counts as revenue (DOMAIN.md "Stats").
REVENUE = frozenset({S.CONFIRMED, S.CHECKED_IN, S.OVERSTAY, S.CHECKED_OUT})
#: Statuses that count toward a resident's limit of upcoming bookings.
UPCOMING = frozenset({S.PENDING, S.CONFIRMED})

CHECK_IN_EARLY = timedelta(minutes=30)
NO_SHOW_AFTER = timedelta(minutes=30)
OVERSTAY_AFTER = timedelta(minutes=30)
BOOKING_HORIZON = timedelta(days=30)


class InvalidTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a {current} booking cannot become {target}")
        self.current = current
        self.target = target


def transition(current: str, target: str) -> BookingStatus:
    source, goal = BookingStatus(current), BookingStatus(target)
    if goal not in TRANSITIONS[source]:
        raise InvalidTransition(source, goal)
    return goal


def sources_of(target: BookingStatus) -> frozenset[BookingStatus]:
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def check_in_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Check-in is allowed from 30 minutes before the block starts until it ends."""
    return start - CHECK_IN_EARLY, end


# --- who may book what, when -------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a booking is refused: a problem slug of API.md and its detail."""

    slug: str
    detail: str


@dataclass(frozen=True)
class BookingFacts:
    """What the eligibility rules need, read inside the booking's transaction (the resident locked).

    ``block_building_id`` and ``block_start`` are None when the block does not exist; the fields
    about the block, its building and the resident's bookings are then never looked at.
    """

    now: datetime
    resident_verified: bool
    resident_building_id: uuid.UUID
    block_building_id: uuid.UUID | None
    block_start: datetime | None = None
    block_available: bool = False
    building_active: bool = False
    upcoming_bookings: int = 0
    max_upcoming_bookings: int = 0
    blocklisted: bool = False


def eligibility(facts: BookingFacts) -> Refusal | None:
    """The first rule a booking breaks, or None: the order is the order of API.md's refusals.

    Another building's block is refused exactly like a block that does not exist, so a resident
    learns nothing about other buildings.
    """
    if not facts.resident_verified:
        return Refusal("resident-not-verified", "Your residency has not been verified by the building yet.")
    if facts.block_start is None or facts.block_building_id != facts.resident_building_id:
        return Refusal("not-found", "No such availability block.")
    if not facts.building_active:
        return Refusal("spot-unavailable", "The building is not taking bookings.")
    if facts.block_start <= facts.now:
        return Refusal("block-in-past", "The block has already started.")
    if facts.block_start > facts.now + BOOKING_HORIZON:
        return Refusal("spot-unavailable", "Blocks can be booked at most 30 days ahead.")
    if not facts.block_available:
        return Refusal("spot-unavailable", "The spot is no longer available for that block.")
    if facts.upcoming_bookings >= facts.max_upcoming_bookings:
        return Refusal(
            "booking-limit-reached",
            f"You already hold {facts.upcoming_bookings} upcoming bookings, the building's maximum.",
        )
    if facts.blocklisted:
        return Refusal("blocked", "You cannot book in this building.")
    return None


# --- visitor data -------------------------------------------------------------------------------

#: No 0/O, 1/I/L: a concierge reads codes aloud and types them.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def new_confirmation_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


class InvalidPlate(ValueError):
    pass


def normalize_plate(value: str) -> str:
    """``ab-12·34`` -> ``AB1234``: upper-case letters and digits only, 4 to 8 of them."""
    plate = "".join(ch for ch in value.upper() if ch.isascii() and ch.isalnum())
    if not 4 <= len(plate) <= 8:
        raise InvalidPlate("the plate must have 4 to 8 letters and digits")
    return plate
