"""The outbox of domain events (``events``) and the durable subscribers' receipts.

An event row is written in the same transaction as the change it reports (``app/events/record.py``),
so it exists if and only if the change committed. ``data`` holds ids, statuses, times, amounts and
spot numbers only (checked against ``app/domain/events.py``), never personal data: events leave
the system (operator webhooks) and are kept 30 days. ``published_at`` is set once the event was
handed to the bus; the relay re-hands any row still unpublished. ``seq`` orders the catch-up API.

A receipt ``(subscriber, event_id)`` is inserted in the same transaction as that subscriber's
effect: the primary key turns a redelivered event into a no-op (exactly-once effect).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import UUIDPk


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_organization_seq", "organization_id", "seq"),
        Index("ix_events_occurred_at", "occurred_at"),
        Index("ix_events_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[UUIDPk]
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True, nullable=False)
    type: Mapped[str] = mapped_column(Text, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    organization_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    building_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    aggregate_type: Mapped[str] = mapped_column(Text, nullable=False)
    aggregate_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def document(self) -> dict[str, Any]:
        """The event document of API.md (what webhooks POST and the catch-up API lists)."""
        return event_document(self)


def event_document(event: Any) -> dict[str, Any]:
    """The event document of an ``Event`` or of a row with its columns (a ``RETURNING``, say)."""
    return {
        "id": str(event.id),
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z") if event.occurred_at else None,
        "organization_id": str(event.organization_id) if event.organization_id else None,
        "building_id": str(event.building_id) if event.building_id else None,
        "data": event.data,
    }


class EventReceipt(Base):
    __tablename__ = "event_receipts"
    __table_args__ = (Index("ix_event_receipts_event_id", "event_id"),)

    subscriber: Mapped[str] = mapped_column(Text, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
