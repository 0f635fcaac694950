"""RFC 9457 problem documents: the one shape of every error, in HTTP answers and in failed jobs.

Services raise ``Problem`` for typed outcomes (``spot-unavailable``, ``forbidden``...); the API
turns it into an ``application/problem+json`` response and the job runner stores it as the
job's ``error``. Titles are fixed per type; ``detail`` is written for the client and never
carries internals.
"""

from __future__ import annotations

from typing import Any

TITLES: dict[str, tuple[int, str]] = {
    "malformed-request": (400, "Malformed request"),
    "validation-error": (422, "Validation error"),
    "unauthenticated": (401, "Unauthenticated"),
    "mfa-required": (401, "MFA required"),
    "mfa-enrollment-required": (403, "MFA enrollment required"),
    "forbidden": (403, "Forbidden"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict"),
    "spot-unavailable": (409, "Spot unavailable"),
    "version-conflict": (409, "Version conflict"),
    "invalid-transition": (409, "Invalid transition"),
    "price-changed": (409, "Price changed"),
    "booking-limit-reached": (409, "Booking limit reached"),
    "block-in-past": (409, "Block in the past"),
    "resident-not-verified": (403, "Resident not verified"),
    "blocked": (403, "Blocked"),
    "idempotency-key-reused": (422, "Idempotency key reused"),
    "idempotency-request-in-flight": (409, "Idempotency request in flight"),
    "rate-limited": (429, "Rate limited"),
    "account-locked": (429, "Account locked"),
    "payload-too-large": (413, "Payload too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "job-failed": (500, "Job failed"),
    "internal-error": (500, "Internal error"),
    "service-unavailable": (503, "Service unavailable"),
}


class Problem(Exception):
    """A typed, client-facing failure.

    Raising one rolls the unit of work back, unless it was created with ``keep_changes=True``:
    then what the use case wrote before refusing is committed, and the refusal answers as usual.
    """

    def __init__(
        self,
        slug: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        keep_changes: bool = False,
    ) -> None:
        default_status, title = TITLES.get(slug, (status or 500, slug.replace("-", " ").capitalize()))
        self.slug = slug
        self.status = status or default_status
        self.title = title
        self.detail = detail or title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}
        #: Commit what the use case did before refusing (``app/unit_of_work.py``): the evidence of a
        #: refusal (a denied check-in, a failed login's audit row) outlives the refusal itself.
        self.keep_changes = keep_changes
        super().__init__(f"{slug}: {self.detail}")

    def to_dict(self, trace_id: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if trace_id:
            doc["trace_id"] = trace_id
        if self.errors is not None:
            doc["errors"] = self.errors
        doc.update(self.extra)
        return doc


def pointer(location: tuple[Any, ...] | list[Any]) -> str:
    """JSON Pointer (RFC 6901) for a pydantic error location."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in location]
    return "/" + "/".join(parts) if parts else ""
