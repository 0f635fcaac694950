"""Pydantic models shared by several resources; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

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


#: The error shape (``Problem`` in the OpenAPI document) and the job documents, defined below the
#: API because job webhooks send them too.
ProblemDocument = Problem


class CallbackField(StrictModel):
    """Mixed into every job-creating request body."""

    callback_url: AnyHttpUrl | None = Field(
        default=None, description="POSTed the final job document, signed per Standard Webhooks."
    )
