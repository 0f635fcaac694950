"""Availability blocks: one sellable interval of one spot.

Blocks of one spot never overlap: an exclusion constraint (``btree_gist``) makes it impossible
whatever the code above does. ``version`` moves on every status change (compare-and-swap).
``price_clp`` is the stored quoted price, refreshed by the pricing recalculation; a booking always
re-prices inside its own transaction.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    Uuid,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, UpdatedAt, UUIDPk


class BlockStatus(enum.StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    BLOCKED = "blocked"


class BlockDuration(enum.StrEnum):
    ELEVEN_HOURS = "11h"
    TWENTY_THREE_HOURS = "23h"


class AvailabilityBlock(Base):
    __tablename__ = "availability_blocks"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="interval"),
        CheckConstraint("status IN ('available', 'reserved', 'blocked')", name="status"),
        CheckConstraint("duration IN ('11h', '23h')", name="duration"),
        CheckConstraint("base_price_clp >= 0 AND price_clp >= 0", name="prices"),
        UniqueConstraint("spot_id", "start_at", name="uq_availability_blocks_spot_start"),
        ExcludeConstraint(
            ("spot_id", "="),
            (literal_column("tstzrange(start_at, end_at)"), "&&"),
            name="ex_availability_blocks_no_overlap",
            using="gist",
        ),
        Index("ix_availability_blocks_search", "building_id", "start_at"),
    )

    id: Mapped[UUIDPk]
    spot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("visitor_spots.id"), nullable=False)
    #: Denormalized from the spot so tenant-scoped search needs no join.
    building_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("buildings.id"), nullable=False)
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    duration: Mapped[str] = mapped_column(Text, nullable=False)
    base_price_clp: Mapped[int] = mapped_column(Integer, nullable=False)
    price_clp: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, default=BlockStatus.AVAILABLE)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
