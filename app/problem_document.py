"""The pydantic shape of a problem document: the ``Problem`` schema of the OpenAPI document.

``app.problems.Problem`` is the exception services raise; this is what it looks like on the wire
(``application/problem+json``), in an HTTP error and as a failed job's ``error`` alike. It lives
apart from the exception so both the API and the job documents can name it without a cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProblemError(BaseModel):
    pointer: str
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem document. Extension members are allowed (RFC 9457 section 3.2)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/validation-error"])
    title: str
    status: int
    detail: str
    trace_id: str | None = None
    errors: list[ProblemError] | None = None
    price_clp: int | None = Field(default=None, description="price-changed: what the block costs now.")
