"""Pydantic models shared by several resources; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
)
from pydantic_core import CoreSchema, core_schema

from app.domain.identity import MAX_EMAIL_LENGTH, normalize_email

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


#: An instant with an explicit offset, held in UTC (PostgreSQL accepts offsets of +-15:59 only, and
#: every comparison and display is in UTC anyway).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so a typo is a 422 and not a silently ignored option."""

    model_config = ConfigDict(extra="forbid")


class ProblemError(BaseModel):
    pointer: str
    detail: str


class ProblemDocument(BaseModel):
    """RFC 9457 problem document (``application/problem+json``)."""

    type: str = Field(examples=["/problems/validation-error"])
    title: str
    status: int
    detail: str
    trace_id: str | None = None
    errors: list[ProblemError] | None = None


class JobProgress(BaseModel):
    done: int
    total: int


class JobDocument(BaseModel):
    id: str
    type: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: JobProgress | None
    result: dict[str, Any] | None
    error: ProblemDocument | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None


class JobAccepted(BaseModel):
    job_id: str
    status: Literal["queued"]
    status_url: str


class JobPage(BaseModel):
    items: list[JobDocument]
    next_cursor: str | None


class CallbackField(StrictModel):
    """Mixed into every job-creating request body."""

    callback_url: AnyHttpUrl | None = Field(
        default=None, description="POSTed the final job document, signed per Standard Webhooks."
    )


PROBLEM_RESPONSES: dict[int, type[BaseModel]] = {
    400: ProblemDocument,
    401: ProblemDocument,
    413: ProblemDocument,
    415: ProblemDocument,
    422: ProblemDocument,
}
