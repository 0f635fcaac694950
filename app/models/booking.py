"""Bookings of availability blocks, and the access events of the gate.

At most one live (not cancelled) booking per block: a partial unique index makes a double
booking impossible even if the code above had a bug. Visitor name, phone and plate are
encrypted; the plate also has a blind index per building, for the gate's lookup by plate.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, Numeric, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, Timestamp, UpdatedAt, UUIDPk
from app.models.types import EncryptedText

STATUSES = "'pending', 'confirmed', 'checked_in', 'checked_out', 'cancelled', 'no_show', 'overstay'"


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUSES})", name="status"),
        CheckConstraint("price_clp >= 0 AND commission_clp >= 0 AND commission_clp <= price_clp", name="amounts"),
        Index(
            "uq_bookings_one_live_per_block", "block_id", unique=True, postgresql_where=text("status <> 'cancelled'")
        ),
        Index("ix_bookings_resident_start", "resident_id", "block_start"),
        Index("ix_bookings_building_start", "building_id", "block_start"),
        Index("ix_bookings_plate", "building_id", "plate_bidx"),
        Index("ix_bookings_block_end", "block_end"),
        Index(
            "ix_bookings_due", "status", "block_start", postgresql_where=text("status IN ('confirmed', 'checked_in')")
        ),
    )

    id: Mapped[UUIDPk]
    block_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("availability_blocks.id"), nullable=False)
    building_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("buildings.id"), nullable=False)
    spot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("visitor_spots.id"), nullable=False)
    resident_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("residents.id"), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    confirmation_code: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    visitor_name: Mapped[str] = mapped_column("visitor_name_encrypted", EncryptedText("bookings.visitor_name"))
    visitor_phone: Mapped[str | None] = mapped_column(
        "visitor_phone_encrypted", EncryptedText("bookings.visitor_phone")
    )
    #: NULL once scrubbed (anonymization of the booker, or retention 24 months after the block ended).
    vehicle_plate: Mapped[str | None] = mapped_column(
        "vehicle_plate_encrypted", EncryptedText("bookings.vehicle_plate")
    )
    plate_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    base_price_clp: Mapped[int] = mapped_column(Integer, nullable=False)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 4), nullable=False)
    pricing_rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("pricing_rules.id"))
    price_clp: Mapped[int] = mapped_column(Integer, nullable=False)
    commission_clp: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Copied from the block so stats, the gate and the schedulers need no join.
    block_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    block_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    checked_in_at: Mapped[Timestamp]
    checked_out_at: Mapped[Timestamp]
    cancelled_at: Mapped[Timestamp]
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class AccessEvent(Base):
    """Every gate action, refused ones (``denied``) included, with the plate the concierge saw."""

    __tablename__ = "access_events"
    __table_args__ = (
        CheckConstraint("action IN ('check_in', 'check_out', 'denied')", name="action"),
        Index("ix_access_events_booking", "booking_id", "occurred_at"),
    )

    id: Mapped[UUIDPk]
    booking_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("bookings.id"), nullable=False)
    building_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("buildings.id"), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    attempted: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    observed_plate: Mapped[str | None] = mapped_column(
        "observed_plate_encrypted", EncryptedText("access_events.observed_plate")
    )
    plate_matches: Mapped[bool | None] = mapped_column()
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
