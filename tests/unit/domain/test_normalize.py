"""Specification of identity normalizers (applied before blind indexing)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import normalize


@pytest.mark.parametrize(
    "raw",
    ["ana@example.cl", "ANA@EXAMPLE.CL", "  Ana@Example.CL ", "\tana@example.cl\n", "Ana@example.cl"],
)
def test_email_trims_and_lower_cases(raw):
    assert normalize.email(raw) == "ana@example.cl"


def test_email_keeps_inner_characters():
    assert normalize.email(" Ana.Perez+Parking@Example.CL ") == "ana.perez+parking@example.cl"


@given(st.text())
def test_email_normalization_is_idempotent(value):
    once = normalize.email(value)
    assert normalize.email(once) == once


@given(st.text())
def test_normalized_email_has_no_surrounding_whitespace(value):
    normalized = normalize.email(value)
    assert normalized == normalized.strip()
