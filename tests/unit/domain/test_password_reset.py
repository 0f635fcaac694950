"""Specification of password-reset codes (DOMAIN.md "Password reset"): code, keyed hash, expiry, attempts."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.password_reset import (
    CODE_TTL,
    MAX_ATTEMPTS,
    REQUESTS_PER_ACCOUNT_PER_HOUR,
    REQUESTS_PER_IP_PER_HOUR,
    Outcome,
    ResetCode,
    check,
    expires_at,
    hash_code,
    is_well_formed,
    issue,
    new_code,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SUBJECT = "3f1c9a52-7d0e-4b8a-9c4e-1a2b3c4d5e6f"
ISSUED = datetime(2026, 4, 5, 2, 55, tzinfo=UTC)


def code_for(code: str, **state: object) -> ResetCode:
    return ResetCode(code_hash=hash_code(KEY, SUBJECT, code), expires_at=expires_at(ISSUED), **state)


# --- the code ---------------------------------------------------------------------------------


def test_the_domain_numbers():
    assert timedelta(minutes=10) == CODE_TTL
    assert MAX_ATTEMPTS == 5
    assert (REQUESTS_PER_ACCOUNT_PER_HOUR, REQUESTS_PER_IP_PER_HOUR) == (3, 10)


def test_a_new_code_is_six_ascii_digits():
    for _ in range(200):
        code = new_code()
        assert len(code) == 6 and code.isascii() and code.isdigit()


def test_new_codes_keep_their_leading_zeros_and_cover_the_whole_range():
    codes = [new_code() for _ in range(3000)]
    assert any(code.startswith("0") for code in codes)  # p(miss) = 0.9**3000
    assert len(set(codes)) > 2900  # a million values: a few collisions at most
    assert {code[0] for code in codes} == set("0123456789")


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("042917", True),
        ("000000", True),
        ("42917", False),
        ("0429170", False),
        ("04291a", False),
        (" 042917", False),
        ("٠٤٢٩١٧", False),  # Arabic-Indic digits are digits to str.isdigit(), not to us
        ("", False),
    ],
)
def test_only_exactly_six_ascii_digits_are_well_formed(code, ok):
    assert is_well_formed(code) is ok


# --- the keyed hash ---------------------------------------------------------------------------


def test_hash_vector_is_hmac_sha256_over_subject_and_code():
    expected = hmac.new(KEY, f"{SUBJECT}\x00042917".encode(), hashlib.sha256).hexdigest()
    assert hash_code(KEY, SUBJECT, "042917") == expected


def test_the_hash_depends_on_the_key_the_subject_and_the_code():
    base = hash_code(KEY, SUBJECT, "042917")
    assert hash_code(OTHER_KEY, SUBJECT, "042917") != base
    assert hash_code(KEY, "another-user", "042917") != base
    assert hash_code(KEY, SUBJECT, "042918") != base


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        hash_code(bytes(16), SUBJECT, "042917")


def test_issue_returns_the_code_to_send_and_only_its_hash_to_store():
    code, stored = issue(KEY, SUBJECT, now=ISSUED)
    assert is_well_formed(code)
    assert stored == ResetCode(code_hash=hash_code(KEY, SUBJECT, code), expires_at=ISSUED + timedelta(minutes=10))
    assert code not in repr(stored)


# --- checking a submitted code -----------------------------------------------------------------


def test_the_right_code_within_ten_minutes_is_accepted():
    verdict = check(
        code_for("042917"), "042917", key=KEY, subject=SUBJECT, now=ISSUED + timedelta(minutes=9, seconds=59)
    )
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.failed_attempts == 0


@pytest.mark.parametrize("late", [timedelta(minutes=10), timedelta(minutes=10, seconds=1), timedelta(days=1)])
def test_the_right_code_at_or_after_expiry_is_refused(late):
    verdict = check(code_for("042917"), "042917", key=KEY, subject=SUBJECT, now=ISSUED + late)
    assert verdict.outcome is Outcome.EXPIRED
    assert verdict.failed_attempts == 0


def test_a_spent_code_is_refused_even_when_right():
    # Spent: used once already, or replaced by a newer request.
    verdict = check(code_for("042917", spent=True), "042917", key=KEY, subject=SUBJECT, now=ISSUED)
    assert verdict.outcome is Outcome.SPENT


def test_a_code_hashed_for_another_account_is_refused():
    state = ResetCode(code_hash=hash_code(KEY, "another-user", "042917"), expires_at=expires_at(ISSUED))
    assert check(state, "042917", key=KEY, subject=SUBJECT, now=ISSUED).outcome is Outcome.WRONG


@pytest.mark.parametrize(
    ("failed_before", "outcome", "failed_after"),
    [(0, Outcome.WRONG, 1), (3, Outcome.WRONG, 4), (4, Outcome.KILLED, 5)],
)
def test_wrong_codes_count_and_the_fifth_kills_the_code(failed_before, outcome, failed_after):
    verdict = check(code_for("042917", failed_attempts=failed_before), "111111", key=KEY, subject=SUBJECT, now=ISSUED)
    assert (verdict.outcome, verdict.failed_attempts) == (outcome, failed_after)
    assert verdict.attempts_left == MAX_ATTEMPTS - failed_after


def test_five_wrong_codes_then_the_right_one_is_still_refused():
    state = code_for("042917")
    outcomes = []
    for guess in ("000001", "000002", "000003", "000004", "000005", "042917"):
        verdict = check(state, guess, key=KEY, subject=SUBJECT, now=ISSUED)
        outcomes.append(verdict.outcome)
        state = ResetCode(state.code_hash, state.expires_at, failed_attempts=verdict.failed_attempts)
    assert outcomes == [Outcome.WRONG] * 4 + [Outcome.KILLED, Outcome.KILLED]
    assert state.failed_attempts == 5


@pytest.mark.parametrize("guess", ["42917", "abcdef", "", "0429170", "\ud800\udfff", "04291\x00"])
def test_a_malformed_guess_costs_an_attempt(guess):
    verdict = check(code_for("042917"), guess, key=KEY, subject=SUBJECT, now=ISSUED)
    assert (verdict.outcome, verdict.failed_attempts) == (Outcome.WRONG, 1)


def test_an_expired_or_spent_code_does_not_count_attempts():
    expired = check(code_for("042917"), "111111", key=KEY, subject=SUBJECT, now=ISSUED + CODE_TTL)
    spent = check(code_for("042917", spent=True), "111111", key=KEY, subject=SUBJECT, now=ISSUED)
    assert (expired.outcome, expired.failed_attempts) == (Outcome.EXPIRED, 0)
    assert (spent.outcome, spent.failed_attempts) == (Outcome.SPENT, 0)


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError):
        check(code_for("042917"), "042917", key=KEY, subject=SUBJECT, now=datetime(2026, 4, 5, 3, 0))


@given(st.text(max_size=12))
def test_no_guess_but_the_code_is_ever_accepted(guess):
    verdict = check(code_for("042917"), guess, key=KEY, subject=SUBJECT, now=ISSUED)
    assert (verdict.outcome is Outcome.ACCEPTED) is (guess == "042917")
