"""The event catalogue refuses data outside each type's keys (app/domain/events.py)."""

import pytest

from app.domain.events import BOOKING_KEYS, DATA_KEYS, EventType, InvalidEvent, check_data

API_MD_TYPES = {
    "booking.confirmed",
    "booking.cancelled",
    "booking.checked_in",
    "booking.checked_out",
    "booking.no_show",
    "booking.overstay",
    "gate.denied",
    "resident.registered",
    "resident.verified",
    "user.banned",
    "user.unbanned",
    "user.anonymized",
    "pricing.recalculated",
    "availability.generated",
}


def booking_data(**overrides):
    return {key: "x" for key in BOOKING_KEYS} | overrides


def test_the_types_are_exactly_api_mds():
    assert {t.value for t in EventType} == API_MD_TYPES
    assert set(DATA_KEYS) == set(EventType)


def test_booking_data_has_exactly_the_api_md_keys():
    assert check_data("booking.confirmed", booking_data()) is EventType.BOOKING_CONFIRMED
    with pytest.raises(InvalidEvent, match="unexpected \\['vehicle_plate'\\]"):
        check_data("booking.confirmed", booking_data(vehicle_plate="AB1234"))
    missing = booking_data()
    del missing["spot_number"]
    with pytest.raises(InvalidEvent, match="missing \\['spot_number'\\]"):
        check_data("booking.cancelled", missing)


@pytest.mark.parametrize("bad", [{"user_id": "u", "email": "a@b.c"}, {}, {"user_id": {"nested": 1}}])
def test_other_types_refuse_extra_missing_or_nested_values(bad):
    with pytest.raises(InvalidEvent):
        check_data("user.banned", bad)


def test_an_unknown_type_is_refused():
    with pytest.raises(InvalidEvent, match="unknown event type"):
        check_data("booking.teleported", {})
