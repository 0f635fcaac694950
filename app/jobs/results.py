"""The typed result of every job type (``JOB_TYPES``): what a succeeded job's ``result`` holds.

A service's job function builds its result with these models, and ``app.jobs.documents`` reads
it back through them, so the stored result, ``GET /v1/jobs/{id}``, the webhook body and the
OpenAPI document are one shape. A booking job's result is a booking, so the booking's
representation lives here and the booking endpoints answer with the same model.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.domain.timefmt import rfc3339
from app.representation import Document


class BookingDocument(Document):
    id: str
    status: str
    confirmation_code: str
    price_clp: int
    commission_clp: int
    availability_block_id: str
    building_id: str
    spot_number: str
    start: str
    end: str
    visitor_name: str
    vehicle_plate: str | None = Field(description="null once scrubbed (anonymization, retention)")
    visitor_phone: str | None
    created_at: str

    @classmethod
    def of(cls, booking: Any, spot_number: str) -> BookingDocument:
        """From a ``Booking`` row and its spot's number (read apart: lists read them in one query)."""
        return cls(
            id=str(booking.id),
            status=str(booking.status),
            confirmation_code=booking.confirmation_code,
            price_clp=booking.price_clp,
            commission_clp=booking.commission_clp,
            availability_block_id=str(booking.block_id),
            building_id=str(booking.building_id),
            spot_number=spot_number,
            start=rfc3339(booking.block_start) or "",
            end=rfc3339(booking.block_end) or "",
            visitor_name=booking.visitor_name,
            vehicle_plate=booking.vehicle_plate,
            visitor_phone=booking.visitor_phone,
            created_at=rfc3339(booking.created_at) or "",
        )


class PingResult(Document):
    pong: bool


class GenerationResult(Document):
    created: int
    skipped: int


class BookingResult(Document):
    """``booking.create`` and ``booking.cancel``: the booking as it is now."""

    booking: BookingDocument


class RecalculationResult(Document):
    blocks_updated: int


class NotificationResult(Document):
    """``notification.send``: the message's id and status when the job ended (``sending``: unknown)."""

    notification_id: str
    status: str


class KeyRotationResult(Document):
    rotated: int
    key_id: str
    columns: dict[str, int]


class AnonymizationResult(Document):
    """``gdpr.anonymize``: people anonymized by this job, and people it found already anonymized."""

    anonymized: int
    skipped: int


class AuditLogDocument(Document):
    """One audit row as ``GET /v1/audit-logs`` and an export show it (``metadata`` holds no PII)."""

    id: str
    occurred_at: str
    actor_id: str | None
    actor_type: str
    action: str
    entity_type: str | None
    entity_id: str | None
    metadata: dict[str, Any]
    ip: str | None
    scrubbed: bool

    @classmethod
    def of(cls, row: Any) -> AuditLogDocument:
        return cls(
            id=str(row.id),
            occurred_at=rfc3339(row.occurred_at) or "",
            actor_id=str(row.actor_id) if row.actor_id else None,
            actor_type=row.actor_type,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            metadata=row.details or {},
            ip=row.ip,
            scrubbed=row.scrubbed,
        )


class ExportedUser(Document):
    id: str
    email: str
    platform_role: str | None
    mfa_enabled: bool
    banned_at: str | None
    created_at: str


class ExportedResident(Document):
    id: str
    building_id: str
    unit_id: str
    unit_number: str
    first_name: str
    last_name: str
    rut: str | None
    phone: str | None
    status: str
    created_at: str


class ExportedSession(Document):
    session_id: str
    created_at: str
    last_seen_at: str
    ip: str | None
    user_agent: str | None


class ExportResult(Document):
    """``gdpr.export``: every personal datum held about the caller (API.md "Privacy and audit").

    ``notifications`` lists the messages sent to them (a reset code's variables left out).
    """

    generated_at: str
    user: ExportedUser
    resident: ExportedResident | None
    bookings: list[BookingDocument]
    sessions: list[ExportedSession]
    notifications: list[dict[str, Any]]
    audit_events: list[AuditLogDocument]
