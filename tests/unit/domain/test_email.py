"""Specification of the one e-mail rule (``identity.normalize_email``) and the ``Email`` body type."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app.api.schemas import Email
from app.domain import normalize
from app.domain.identity import MAX_EMAIL_LENGTH, InvalidIdentity, normalize_email


class Body(BaseModel):
    email: Email
    contact: Email | None = None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ana@Example.CL ", "ana@example.cl"),
        ("Ana.Perez+Parking@Example.CL", "ana.perez+parking@example.cl"),
        ("user@home.test", "user@home.test"),  # RFC 2606: fixtures never need a real domain
        ("josé@correo.cl", "josé@correo.cl"),
    ],
)
def test_valid_addresses_are_trimmed_and_lower_cased(raw, expected):
    assert normalize_email(raw) == expected
    assert Body(email=raw).email == expected


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "@example.cl",
        "ana@",
        "ana@localhost",
        "ana@@example.cl",
        "ana example@example.cl",
        "Ana <ana@example.cl>",  # pydantic's EmailStr would take the display-name form
        "ana@example..cl",
    ],
)
def test_invalid_addresses_are_refused_everywhere(raw):
    with pytest.raises(InvalidIdentity, match="not an e-mail address"):
        normalize_email(raw)
    with pytest.raises(ValidationError):
        Body(email=raw)


def test_an_overlong_value_is_refused_before_parsing():
    raw = "a" * 1_000_000 + "@example.cl"
    with pytest.raises(InvalidIdentity, match=f"at most {MAX_EMAIL_LENGTH}"):
        normalize_email(raw)
    with pytest.raises(ValidationError, match="at most 320 characters"):
        Body(email=raw)


def test_the_spec_shows_an_email_string_with_its_length_limit():
    schema = Body.model_json_schema()["properties"]
    assert schema["email"] == {"format": "email", "maxLength": 320, "title": "Email", "type": "string"}
    assert {"format": "email", "maxLength": 320, "type": "string"} in schema["contact"]["anyOf"]


def test_the_blind_index_normalizer_agrees_with_the_body_type():
    raw = " Ana.Perez@Example.CL"
    assert normalize.email(raw) == Body(email=raw).email


@given(st.emails())
def test_every_generated_address_normalizes_idempotently(raw):
    try:
        once = normalize_email(raw)
    except InvalidIdentity:
        assume(False)  # hypothesis may generate addresses email-validator refuses (reserved domains)
    assert normalize_email(once) == once
    assert once == once.lower()
