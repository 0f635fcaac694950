"""TOTP codes: which time step a code belongs to, within one step of drift."""

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import normalize
from app.security import recovery_codes, totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_795_570_000.0  # a fixed instant, 2026-11-24


def code_at(step: int) -> str:
    return pyotp.TOTP(SECRET).generate_otp(step)


def test_the_current_code_matches_the_current_step():
    assert totp.matching_step(SECRET, code_at(totp.current_step(NOW)), now=NOW) == totp.current_step(NOW)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_one_step_of_drift_either_way_is_accepted(offset):
    step = totp.current_step(NOW) + offset
    assert totp.matching_step(SECRET, code_at(step), now=NOW) == step


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_further_away_are_refused(offset):
    step = totp.current_step(NOW) + offset
    code = code_at(step)
    window = {code_at(totp.current_step(NOW) + d) for d in (-1, 0, 1)}
    if code not in window:  # a 6-digit collision inside the window would make this case meaningless
        assert totp.matching_step(SECRET, code, now=NOW) is None


@given(st.text(max_size=12))
def test_anything_that_is_not_six_digits_is_refused_without_error(text):
    if not (len(text.strip().replace(" ", "")) == 6 and text.strip().replace(" ", "").isdigit()):
        assert totp.matching_step(SECRET, text, now=NOW) is None


def test_spaces_inside_a_typed_code_are_ignored():
    code = code_at(totp.current_step(NOW))
    assert totp.matching_step(SECRET, f" {code[:3]} {code[3:]} ", now=NOW) == totp.current_step(NOW)


def test_new_secrets_are_long_enough_for_pyotp_and_differ():
    first, second = totp.new_secret(), totp.new_secret()
    assert len(first) == 32 and first != second
    pyotp.TOTP(first).now()


def test_the_provisioning_uri_names_issuer_and_account():
    uri = totp.provisioning_uri(SECRET, "ana@example.cl", "Estacionate")
    assert uri.startswith("otpauth://totp/Estacionate:ana%40example.cl?")
    assert "issuer=Estacionate" in uri and f"secret={SECRET}" in uri


def test_recovery_codes_are_ten_distinct_unambiguous_codes():
    codes = recovery_codes.generate()
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert len(code) == 11 and code[5] == "-"
        assert not set(code.replace("-", "")) & set("01ilo")


def test_typed_recovery_codes_are_normalized():
    assert normalize.recovery_code(" ABCDE-fghjk ") == normalize.recovery_code("abcde fghjk") == "abcdefghjk"
