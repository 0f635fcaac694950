"""Specification of trace id extraction from incoming headers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.observability import trace

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
GENERATED = re.compile(r"^[0-9a-f]{32}$")
ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def test_valid_traceparent_gives_its_trace_id():
    assert trace.from_headers({"traceparent": TRACEPARENT}) == TRACE_ID


def test_valid_traceparent_wins_over_x_request_id():
    assert trace.from_headers({"traceparent": TRACEPARENT, "X-Request-ID": "req-123"}) == TRACE_ID


def test_traceparent_with_surrounding_whitespace_is_accepted():
    assert trace.from_headers({"traceparent": f"  {TRACEPARENT} "}) == TRACE_ID


def test_all_zero_trace_id_is_ignored_in_favour_of_x_request_id():
    headers = {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01", "X-Request-ID": "req-123"}
    assert trace.from_headers(headers) == "req-123"


def test_all_zero_trace_id_alone_gives_a_new_trace_id():
    result = trace.from_headers({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"})
    assert GENERATED.match(result)
    assert result != "0" * 32


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}z-00f067aa0ba902b7-01",
        f"00-{TRACE_ID[:-1]}g-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7",
        f"00-{TRACE_ID}-00f067aa0ba902b-01",
        f"00_{TRACE_ID}_00f067aa0ba902b7_01",
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",
        "",
    ],
)
def test_malformed_traceparent_falls_back_to_x_request_id(traceparent):
    assert trace.from_headers({"traceparent": traceparent, "X-Request-ID": "req-123"}) == "req-123"


@pytest.mark.parametrize("request_id", ["req-123", "a", "a" * 128, "Abc.DEF_ghi:jkl-0"])
def test_valid_x_request_id_is_used(request_id):
    assert trace.from_headers({"X-Request-ID": request_id}) == request_id


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("has space", id="space"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("abc\ndef", id="newline"),
        pytest.param("abc\r\nX-Injected: 1", id="crlf"),
        pytest.param("<script>", id="markup"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
    ],
)
def test_invalid_x_request_id_is_ignored_and_a_new_id_generated(request_id):
    result = trace.from_headers({"X-Request-ID": request_id})
    assert GENERATED.match(result)
    assert result != request_id


def test_no_headers_give_a_new_trace_id():
    assert GENERATED.match(trace.from_headers({}))


def test_generated_trace_ids_are_unique():
    assert len({trace.from_headers({}) for _ in range(50)}) == 50


@given(traceparent=st.text(max_size=80), request_id=st.text(max_size=200))
def test_result_is_always_a_safe_token_whatever_the_headers(traceparent, request_id):
    result = trace.from_headers({"traceparent": traceparent, "X-Request-ID": request_id})
    assert ACCEPTABLE.fullmatch(result)


def test_set_current_and_reset_restore_the_previous_value():
    outer = trace.set_current("outer")
    try:
        inner = trace.set_current("inner")
        assert trace.current() == "inner"
        trace.reset(inner)
        assert trace.current() == "outer"
    finally:
        trace.reset(outer)
