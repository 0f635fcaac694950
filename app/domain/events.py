"""The domain event catalogue (API.md "Events and operator webhooks"): types and their data keys.

Event data leaves the system (operator webhooks, the catch-up API) and is kept 30 days, so it
carries ids, statuses, times, amounts and spot numbers only, never personal data. Each type has
the exact set of keys its ``data`` holds; ``check_data`` refuses anything else, so a service that
tries to put a name, a plate or a phone into an event fails its tests instead of leaking it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    BOOKING_CONFIRMED = "booking.confirmed"
    BOOKING_CANCELLED = "booking.cancelled"
    BOOKING_CHECKED_IN = "booking.checked_in"
    BOOKING_CHECKED_OUT = "booking.checked_out"
    BOOKING_NO_SHOW = "booking.no_show"
    BOOKING_OVERSTAY = "booking.overstay"
    GATE_DENIED = "gate.denied"
    RESIDENT_REGISTERED = "resident.registered"
    RESIDENT_VERIFIED = "resident.verified"
    USER_BANNED = "user.banned"
    USER_UNBANNED = "user.unbanned"
    USER_ANONYMIZED = "user.anonymized"
    PRICING_RECALCULATED = "pricing.recalculated"
    AVAILABILITY_GENERATED = "availability.generated"


#: Booking events' data, exactly (API.md).
BOOKING_KEYS = frozenset(
    {
        "booking_id",
        "availability_block_id",
        "spot_number",
        "start",
        "end",
        "status",
        "price_clp",
        "commission_clp",
        "resident_id",
    }
)

#: The keys of each type's ``data``: exactly these, no more, no fewer.
DATA_KEYS: dict[EventType, frozenset[str]] = {
    EventType.BOOKING_CONFIRMED: BOOKING_KEYS,
    EventType.BOOKING_CANCELLED: BOOKING_KEYS,
    EventType.BOOKING_CHECKED_IN: BOOKING_KEYS,
    EventType.BOOKING_CHECKED_OUT: BOOKING_KEYS,
    EventType.BOOKING_NO_SHOW: BOOKING_KEYS,
    EventType.BOOKING_OVERSTAY: BOOKING_KEYS,
    # A refused check-in or check-out: which booking, what was attempted, why (a reason code).
    EventType.GATE_DENIED: frozenset({"booking_id", "attempted", "reason"}),
    EventType.RESIDENT_REGISTERED: frozenset({"resident_id", "user_id", "unit_id", "status"}),
    EventType.RESIDENT_VERIFIED: frozenset({"resident_id", "user_id", "unit_id", "status"}),
    EventType.USER_BANNED: frozenset({"user_id"}),
    EventType.USER_UNBANNED: frozenset({"user_id"}),
    EventType.USER_ANONYMIZED: frozenset({"user_id"}),
    # One event per building of a recalculation run; the counts are the run's.
    EventType.PRICING_RECALCULATED: frozenset({"job_id", "buildings", "blocks_updated"}),
    # One building's generation run.
    EventType.AVAILABILITY_GENERATED: frozenset({"job_id", "blocks_created", "blocks_skipped"}),
}

EVENT_TYPES: frozenset[str] = frozenset(t.value for t in EventType)


class InvalidEvent(ValueError):
    """A service built an event the catalogue does not allow (a programming error)."""


def check_data(type_: str, data: dict[str, Any]) -> EventType:
    """Return the type if ``data`` has exactly that type's keys; raise ``InvalidEvent`` otherwise."""
    try:
        event_type = EventType(type_)
    except ValueError:
        raise InvalidEvent(f"unknown event type {type_!r}") from None
    expected = DATA_KEYS[event_type]
    keys = set(data)
    if keys != expected:
        raise InvalidEvent(
            f"{event_type.value} data must have exactly {sorted(expected)}: "
            f"unexpected {sorted(keys - expected)}, missing {sorted(expected - keys)}"
        )
    for key, value in data.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            raise InvalidEvent(f"{event_type.value} data[{key!r}] must be a scalar, got {type(value).__name__}")
    return event_type
