"""Specification of Chilean identity values (DOMAIN.md "Identity data"): RUT and phone numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.identity import InvalidIdentity, normalize_phone, normalize_rut, rut_check_digit

#: A body whose modulo-11 check digit is K (11 - sum % 11 == 10).
K_BODY = "10000013"
#: A body whose check digit is 0 (11 - sum % 11 == 11).
ZERO_BODY = "10000004"

# --- RUT ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "check"),
    [("12345678", "5"), ("11111111", "1"), ("7654321", "6"), ("76086428", "5"), (K_BODY, "K"), (ZERO_BODY, "0")],
)
def test_check_digit_is_modulo_eleven_with_weights_two_to_seven(body, check):
    assert rut_check_digit(body) == check


@pytest.mark.parametrize(
    "raw",
    ["12.345.678-5", "12345678-5", "123456785", " 12.345.678-5 ", "12 345 678 5", "012.345.678-5"],
)
def test_a_valid_rut_is_accepted_with_or_without_dots_and_dash(raw):
    assert normalize_rut(raw) == "12345678-5"


def test_every_spelling_of_one_rut_normalizes_to_the_same_value():
    spellings = {normalize_rut(raw) for raw in ("7.654.321-6", "7654321-6", "76543216", "7654321 6")}
    assert spellings == {"7654321-6"}


@pytest.mark.parametrize("raw", [f"{K_BODY}-k", f"{K_BODY}k", "10.000.013-k", f"{K_BODY}-K"])
def test_a_lower_case_k_check_digit_is_upper_cased(raw):
    assert normalize_rut(raw) == f"{K_BODY}-K"


def test_a_zero_check_digit_is_accepted():
    assert normalize_rut(f"{ZERO_BODY}0") == f"{ZERO_BODY}-0"


@pytest.mark.parametrize(
    "raw",
    [
        "12.345.678-4",  # wrong check digit
        "12345678-K",  # K where 5 belongs
        f"{K_BODY}-0",  # 0 where K belongs
        "12.3A5.678-5",  # a letter in the body
        "AB.CDE.FGH-5",  # letters only
        "12345678-X",  # a check "digit" that is neither 0-9 nor K
        "123.456.789-1",  # nine digits: longer than any RUT body
        "5",  # too short: a check digit without a body
        "-5",  # too short once the dash is stripped
        "0-0",  # a zero body
        "",  # empty
        "   ",  # blank
        ".-",  # punctuation only
    ],
)
def test_an_invalid_rut_is_refused(raw):
    with pytest.raises(InvalidIdentity):
        normalize_rut(raw)


def test_the_refusal_message_is_safe_to_show_and_names_the_problem():
    with pytest.raises(InvalidIdentity, match="check digit"):
        normalize_rut("12.345.678-4")


bodies = st.integers(min_value=1, max_value=99_999_999).map(str)


@given(bodies)
def test_every_body_with_its_computed_check_digit_validates(body):
    check = rut_check_digit(body)
    assert normalize_rut(f"{body}-{check}") == f"{body}-{check}"
    assert normalize_rut(f"{int(body):,}".replace(",", ".") + f"-{check.lower()}") == f"{body}-{check}"


@given(bodies, st.sampled_from(list("0123456789K")))
def test_any_other_check_digit_is_refused(body, wrong):
    if wrong == rut_check_digit(body):
        wrong = "K" if wrong == "0" else "0"
    with pytest.raises(InvalidIdentity):
        normalize_rut(f"{body}-{wrong}")


@given(bodies)
def test_rut_normalization_is_idempotent(body):
    once = normalize_rut(body + rut_check_digit(body))
    assert normalize_rut(once) == once


# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["912345678", "9 1234 5678", "9-1234-5678", "+56912345678", "+56 9 1234 5678", "56912345678", "+56 (9) 1234-5678"],
)
def test_a_chilean_mobile_is_normalized_to_e164(raw):
    assert normalize_phone(raw) == "+56912345678"


def test_a_foreign_e164_number_is_kept():
    assert normalize_phone("+1 415 555 0123") == "+14155550123"


@pytest.mark.parametrize(
    "raw",
    [
        "",  # empty
        "phone",  # letters
        "12345678",  # eight digits, no country code
        "812345678",  # nine digits that are not a mobile (no leading 9) and no country code
        "9123456789",  # ten digits without country code
        "+0123456789",  # country codes never start with 0
        "+5691234",  # too short for E.164
        "+1234567890123456",  # longer than E.164's 15 digits
        "+56 9 1234 567a",  # a letter
        "++56912345678",  # doubled plus
    ],
)
def test_an_invalid_phone_is_refused(raw):
    with pytest.raises(InvalidIdentity):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", ["+5691234567", "+569123456789", "+56 9 1234 567"])
def test_a_chilean_number_must_have_nine_national_digits(raw):
    """Chile's numbering plan has nine-digit national numbers: +56 with 8 or 10 digits is no phone."""
    with pytest.raises(InvalidIdentity):
        normalize_phone(raw)


@given(st.integers(min_value=0, max_value=99_999_999))
def test_every_nine_digit_mobile_becomes_plus_five_six_nine(rest):
    digits = f"9{rest:08d}"
    assert normalize_phone(digits) == f"+56{digits}"
    assert normalize_phone(f"+56 {digits[0]} {digits[1:5]} {digits[5:]}") == f"+56{digits}"
