"""Specification of RFC 9457 problem documents and RFC 6901 JSON pointers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.problems import Problem, pointer

#: The "Problem types (slug: status)" table of API.md.
API_STATUSES = {
    "malformed-request": 400,
    "validation-error": 422,
    "unauthenticated": 401,
    "mfa-required": 401,
    "mfa-enrollment-required": 403,
    "forbidden": 403,
    "not-found": 404,
    "conflict": 409,
    "spot-unavailable": 409,
    "version-conflict": 409,
    "invalid-transition": 409,
    "price-changed": 409,
    "booking-limit-reached": 409,
    "block-in-past": 409,
    "resident-not-verified": 403,
    "blocked": 403,
    "idempotency-key-reused": 422,
    "idempotency-request-in-flight": 409,
    "rate-limited": 429,
    "account-locked": 429,
    "payload-too-large": 413,
    "unsupported-media-type": 415,
    "internal-error": 500,
    "service-unavailable": 503,
}


def test_to_dict_has_the_rfc9457_shape():
    doc = Problem("spot-unavailable", "Spot 12 is taken for that block").to_dict()
    assert doc == {
        "type": "/problems/spot-unavailable",
        "title": "Spot unavailable",
        "status": 409,
        "detail": "Spot 12 is taken for that block",
    }


def test_trace_id_is_included_only_when_given():
    problem = Problem("not-found")
    assert "trace_id" not in problem.to_dict()
    assert "trace_id" not in problem.to_dict(trace_id=None)
    assert problem.to_dict(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")["trace_id"] == (
        "4bf92f3577b34da6a3ce929d0e0e4736"
    )


def test_errors_are_included_only_when_given():
    assert "errors" not in Problem("validation-error").to_dict()
    errors = [{"pointer": "/email", "detail": "not an e-mail address"}]
    assert Problem("validation-error", errors=errors).to_dict()["errors"] == errors


def test_detail_defaults_to_the_title():
    assert Problem("forbidden").to_dict()["detail"] == "Forbidden"


def test_extra_members_are_added_to_the_document():
    doc = Problem("rate-limited", extra={"retry_after": 30}).to_dict()
    assert doc["retry_after"] == 30
    assert doc["status"] == 429


def test_explicit_status_overrides_the_default():
    assert Problem("conflict", status=410).to_dict()["status"] == 410


def test_unknown_slug_gets_a_readable_title_and_a_server_error_status():
    problem = Problem("something-odd")
    assert problem.to_dict()["type"] == "/problems/something-odd"
    assert problem.title == "Something odd"
    assert problem.status == 500


def test_problem_is_an_exception_naming_its_slug():
    problem = Problem("blocked", "Plate is blocked")
    assert isinstance(problem, Exception)
    assert str(problem) == "blocked: Plate is blocked"


@pytest.mark.parametrize(("slug", "status"), sorted(API_STATUSES.items()))
def test_known_slugs_have_the_status_documented_in_api_md(slug, status):
    problem = Problem(slug)
    assert problem.status == status
    assert problem.to_dict()["status"] == status
    assert problem.title != slug


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (("a", 0, "b/c"), "/a/0/b~1c"),
        (("body", "email"), "/body/email"),
        (("a~b",), "/a~0b"),
        (("~/",), "/~0~1"),
        ([3], "/3"),
        ((), ""),
    ],
)
def test_pointer_escapes_per_rfc6901(location, expected):
    assert pointer(location) == expected


@given(st.lists(st.one_of(st.text(), st.integers(min_value=0)), min_size=1, max_size=6))
def test_pointer_decodes_back_to_its_parts(location):
    encoded = pointer(location)
    assert encoded.startswith("/")
    decoded = [part.replace("~1", "/").replace("~0", "~") for part in encoded[1:].split("/")]
    assert decoded == [str(part) for part in location]
