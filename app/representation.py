"""The base of every response shape, and the problem document (``Problem`` in the OpenAPI document).

``Document`` is closed (``additionalProperties: false``): a body holds exactly the fields its
schema lists, so schemathesis checks them all and a generated client gets a typed attribute for
each, never an untyped ``additional_properties`` bag.

``app.problems.Problem`` is the exception services raise; ``Problem`` here is what it looks like
on the wire (``application/problem+json``), in an HTTP error and as a failed job's ``error``
alike. Both live below the API so the job documents (webhook bodies) can use them without a cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Document(BaseModel):
    """A response shape: built by the view from model objects, then ``model_dump(mode="json")``."""

    model_config = ConfigDict(extra="forbid")


class ProblemError(Document):
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
