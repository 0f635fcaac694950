"""Specification of JSON-lines logging with redaction of personal data and credentials."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.observability import trace
from app.observability.logging import REDACTED, RedactionFilter, build_handler, redact_text, redact_value

JWT = jwt.encode({"sub": "user-1", "sid": "session-1"}, "k" * 40, algorithm="HS256")
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

LogCapture = Callable[..., dict]


@pytest.fixture
def log_line() -> Iterator[LogCapture]:
    """Log one record through ``build_handler`` into a string and return the parsed JSON line."""
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.unit.logging.{uuid.uuid4().hex}")
    logger.handlers = [build_handler("api", stream=stream)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)

    def emit(method: str, message: str, *args: object, **kwargs: object) -> dict:
        start = stream.tell()
        getattr(logger, method)(message, *args, **kwargs)
        written = stream.getvalue()[start:]
        assert written.endswith("\n")
        lines = written.splitlines()
        assert len(lines) == 1, "one record must be exactly one line"
        return json.loads(lines[0])

    emit.stream = stream  # type: ignore[attr-defined]
    emit.logger = logger  # type: ignore[attr-defined]
    yield emit
    logger.handlers = []


# --- redact_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["ana@example.cl", "Ana.Perez+parking@Mail.Example.COM", "x_y-z%1@sub-domain.example.org"],
)
def test_redact_text_removes_email_addresses(email):
    assert redact_text(f"login failed for {email} today") == f"login failed for {REDACTED} today"


local_parts = st.from_regex(r"[A-Za-z0-9._%+-]{1,30}", fullmatch=True)
domains = st.from_regex(r"([A-Za-z0-9-]{1,12}\.){1,3}[A-Za-z]{2,8}", fullmatch=True)


@given(local=local_parts, domain=domains)
def test_redact_text_removes_any_ordinary_email(local, domain):
    assert redact_text(f"user <{local}@{domain}> signed in") == f"user <{REDACTED}> signed in"


def test_redact_text_removes_jwts():
    redacted = redact_text(f"token={JWT} rejected")
    assert JWT not in redacted
    assert JWT.split(".")[1] not in redacted
    assert redacted == f"token={REDACTED} rejected"


def test_redact_text_removes_bearer_credentials():
    redacted = redact_text("Authorization: Bearer abc123.def-456_ghi~ then more")
    assert "abc123" not in redacted
    assert redacted == f"Authorization: {REDACTED} then more"


def test_redact_text_removes_bearer_credentials_in_any_case():
    assert "opaque-token" not in redact_text("authorization: BEARER opaque-token")


def test_redact_text_removes_webhook_secrets():
    redacted = redact_text(f"signing with {WEBHOOK_SECRET}")
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in redacted
    assert redacted == f"signing with {REDACTED}"


def test_redact_text_keeps_ordinary_text():
    text = "job 1f3e queued for building 12 with status_code=202"
    assert redact_text(text) == text


# --- redact_value ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["password", "email", "access_token", "secret", "new_password", "webhook_secret", "Authorization", "rut", "phone"],
)
def test_sensitive_keys_are_redacted_whatever_the_value(key):
    assert redact_value(key, 12345) == REDACTED


@pytest.mark.parametrize("key", ["status_code", "http_status", "job_id", "tokenizer_count", "user_id"])
def test_ordinary_keys_are_kept(key):
    assert redact_value(key, 12345) == 12345


def test_nested_values_are_redacted():
    value = {"email": "ana@example.cl", "note": "call ana@example.cl", "count": 3, "items": ["b@example.cl", 4]}
    assert redact_value("payload", value) == {
        "email": REDACTED,
        "note": f"call {REDACTED}",
        "count": 3,
        "items": [REDACTED, 4],
    }


# --- the JSON handler -----------------------------------------------------------------------


def test_each_record_is_one_json_object_with_the_standard_keys(log_line):
    line = log_line("info", "job queued")
    assert {"time", "level", "logger", "message", "service", "trace_id"} <= line.keys()
    assert line["message"] == "job queued"
    assert line["level"] == "INFO"
    assert line["service"] == "api"
    assert line["logger"].startswith("tests.unit.logging.")


def test_multi_line_messages_stay_on_one_line(log_line):
    line = log_line("warning", "first\nsecond")
    assert line["message"] == "first\nsecond"


def test_message_arguments_are_redacted(log_line):
    line = log_line("info", "login for %s with %s then %s", "ana@example.cl", "Bearer opaque-credential", JWT)
    rendered = json.dumps(line)
    for leaked in ("ana@example.cl", "opaque-credential", JWT.split(".")[1]):
        assert leaked not in rendered
    assert line["message"] == f"login for {REDACTED} with {REDACTED} then {REDACTED}"


def test_sensitive_extra_fields_are_redacted_and_ordinary_ones_kept(log_line):
    line = log_line(
        "info",
        "request done",
        extra={
            "password": "hunter2-hunter2",
            "email": "ana@example.cl",
            "access_token": "opaque",
            "secret": "s3cr3t",
            "status_code": 201,
            "http_status": 502,
            "job_id": "0f9a",
        },
    )
    assert line["password"] == REDACTED
    assert line["email"] == REDACTED
    assert line["access_token"] == REDACTED
    assert line["secret"] == REDACTED
    assert line["status_code"] == 201
    assert line["http_status"] == 502
    assert line["job_id"] == "0f9a"
    rendered = json.dumps(line)
    for leaked in ("hunter2-hunter2", "ana@example.cl", "opaque", "s3cr3t"):
        assert leaked not in rendered


def test_email_inside_an_ordinary_extra_field_is_redacted(log_line):
    line = log_line("info", "lookup", extra={"note": "asked about ana@example.cl"})
    assert line["note"] == f"asked about {REDACTED}"


def test_exception_text_is_redacted(log_line):
    try:
        raise ValueError("duplicate user ana@example.cl")
    except ValueError:
        line = log_line("exception", "registration failed")
    rendered = json.dumps(line)
    assert "ana@example.cl" not in rendered
    assert "ValueError" in rendered
    assert REDACTED in rendered
    assert line["level"] == "ERROR"


def test_trace_id_of_the_current_context_appears_in_the_line(log_line):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    token = trace.set_current(trace_id)
    try:
        line = log_line("info", "inside a request")
    finally:
        trace.reset(token)
    assert line["trace_id"] == trace_id


def test_trace_id_is_empty_outside_a_trace(log_line):
    token = trace.set_current(None)
    try:
        line = log_line("info", "outside a request")
    finally:
        trace.reset(token)
    assert not line["trace_id"]


def test_explicit_trace_id_extra_wins_over_the_context(log_line):
    token = trace.set_current("context-trace")
    try:
        line = log_line("info", "from a task", extra={"trace_id": "job-trace"})
    finally:
        trace.reset(token)
    assert line["trace_id"] == "job-trace"


def test_redaction_filter_keeps_the_record():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "mail %s", ("ana@example.cl",), None)
    assert RedactionFilter().filter(record) is True
    assert record.getMessage() == f"mail {REDACTED}"


def test_redaction_filter_survives_a_bad_format_string():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %d for ana@example.cl", ("nan",), None)
    assert RedactionFilter().filter(record) is True
    assert "ana@example.cl" not in record.getMessage()
