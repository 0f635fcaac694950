"""The booking state machine, plates and confirmation codes."""

import itertools

import pytest

from app.domain.bookings import (
    CODE_ALPHABET,
    TERMINAL,
    TRANSITIONS,
    BookingStatus,
    InvalidPlate,
    InvalidTransition,
    new_confirmation_code,
    normalize_plate,
    sources_of,
    transition,
)

S = BookingStatus
ALLOWED = {
    (S.PENDING, S.CONFIRMED),
    (S.PENDING, S.CANCELLED),
    (S.CONFIRMED, S.CHECKED_IN),
    (S.CONFIRMED, S.NO_SHOW),
    (S.CONFIRMED, S.CANCELLED),
    (S.CHECKED_IN, S.CHECKED_OUT),
    (S.CHECKED_IN, S.OVERSTAY),
    (S.OVERSTAY, S.CHECKED_OUT),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_only_the_transitions_of_domain_md_are_allowed(current, target):
    if (current, target) in ALLOWED:
        assert transition(current, target) == target
    else:
        with pytest.raises(InvalidTransition):
            transition(current, target)


def test_terminal_states_are_cancelled_checked_out_and_no_show():
    assert {S.CANCELLED, S.CHECKED_OUT, S.NO_SHOW} == TERMINAL
    assert all(not TRANSITIONS[s] for s in TERMINAL)


def test_scheduled_transitions_come_from_the_right_states():
    assert sources_of(S.NO_SHOW) == {S.CONFIRMED}
    assert sources_of(S.OVERSTAY) == {S.CHECKED_IN}


@pytest.mark.parametrize(
    ("typed", "plate"), [("ab-12·34", "AB1234"), (" bb cl 12 ", "BBCL12"), ("abcd1234", "ABCD1234")]
)
def test_plates_are_normalized(typed, plate):
    assert normalize_plate(typed) == plate


@pytest.mark.parametrize("typed", ["abc", "a-b-c", "ABCDE12345", "", "ñandú"])
def test_plates_outside_four_to_eight_characters_are_refused(typed):
    with pytest.raises(InvalidPlate):
        normalize_plate(typed)


def test_confirmation_codes_avoid_ambiguous_characters():
    codes = {new_confirmation_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    assert not set(CODE_ALPHABET) & set("0O1IL")
