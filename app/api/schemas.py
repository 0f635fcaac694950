"""Pydantic models shared by several resources; the OpenAPI document is generated from these."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    Strict,
    StringConstraints,
)
from pydantic_core import CoreSchema, core_schema

from app.domain.identity import MAX_EMAIL_LENGTH, normalize_email
from app.jobs.documents import JobAccepted as JobAccepted
from app.jobs.documents import JobDocument as JobDocument
from app.jobs.documents import JobPage as JobPage
from app.jobs.documents import JobProgress as JobProgress
from app.representation import Problem
from app.representation import ProblemError as ProblemError

# Short human texts: surrounding spaces are removed first, so "   " is refused as empty.
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Email(EmailStr):
    """The one e-mail type of request bodies: pydantic's ``EmailStr`` (``format: email`` in the
    spec), validated and normalised by ``identity.normalize_email`` (lower-cased, no display-name
    form), so a body, the blocklist and the blind index agree on what an address is."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = core_schema.str_schema(max_length=MAX_EMAIL_LENGTH)
        return core_schema.no_info_after_validator_function(cls._validate, schema)

    @classmethod
    def _validate(cls, input_value: str, /) -> str:
        return normalize_email(input_value)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. year 1 with a negative offset
        raise ValueError("the instant is out of range") from exc


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _no_timestamp(value: Any) -> Any:
    """An instant is an RFC 3339 text (the documented ``date-time``), never a Unix timestamp number."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("an RFC 3339 date-time is expected, e.g. 2026-01-31T12:00:00Z")
    return value


def _json_integer(value: Any) -> Any:
    """A JSON integer: ``true`` or ``"5"`` are not numbers (5.0 is, as JSON Schema says)."""
    if isinstance(value, bool | str):
        raise ValueError("an integer is expected")
    return value


#: An instant with an explicit offset, held in UTC (PostgreSQL accepts offsets of +-15:59 only, and
#: every comparison and display is in UTC anyway).
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_no_timestamp), AfterValidator(_to_utc)]
#: Numbers and booleans of request bodies are what their schema says, not whatever pydantic can
#: coerce (``"5"``, ``true`` as 1, ``"yes"`` as true): the document and the code accept the same.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]
JsonBool = Annotated[bool, Strict()]
#: ``next_cursor`` as it came back: opaque base64url. One we did not issue is a 422 at ``/cursor``.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def exactly_one_of(*names: str) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a body that takes exactly one of ``names``: a ``oneOf`` of requireds.

    The fields are optional strings in pydantic (``str | None``); in the document each is its
    non-null type, and ``oneOf`` says that exactly one is present. Pair it with ``no_nulls``.
    """

    def shape(schema: dict[str, Any]) -> None:
        for name in names:
            field = schema["properties"][name]
            variants = [v for v in field.pop("anyOf", []) if v.get("type") != "null"]
            if variants:
                field.update(variants[0])
            field.pop("default", None)
        schema["oneOf"] = [{"required": [name]} for name in names]

    return shape


def no_nulls(data: Any, names: tuple[str, ...]) -> Any:
    """A ``mode="before"`` check: leave out the field you do not send rather than sending null."""
    if isinstance(data, dict) and any(name in data and data[name] is None for name in names):
        raise ValueError(f"{' and '.join(names)} are strings; leave out the one you do not send")
    return data


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so a typo is a 422 and not a silently ignored option."""

    model_config = ConfigDict(extra="forbid")


#: The error shape (``Problem`` in the OpenAPI document) and the job documents, defined below the
#: API because job webhooks send them too.
ProblemDocument = Problem


class CallbackField(StrictModel):
    """Mixed into every job-creating request body."""

    callback_url: AnyHttpUrl | None = Field(
        default=None, description="POSTed the final job document, signed per Standard Webhooks."
    )
