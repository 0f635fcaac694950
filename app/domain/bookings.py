"""The booking state machine and the rules around it (DOMAIN.md "Bookings"). Pure functions.

The state machine is the only way a status ever changes: every writer asks ``transition`` (or,
for set-based scheduled updates, ``sources_of``) before it writes.
"""

from __future__ import annotations

import enum
import re
import secrets
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
