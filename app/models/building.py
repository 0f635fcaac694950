"""A building of an organization, with its units and visitor spots. Nothing is hard-deleted:
an archived building (``is_active`` false) keeps its history."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Integer, Numeric, Text, UniqueConstraint, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, UpdatedAt, UUIDPk

DEFAULT_TIMEZONE = "America/Santiago"
DEFAULT_COMMISSION_RATE = Decimal("0.10")
DEFAULT_BASE_PRICE_CLP = 5000
DEFAULT_MAX_UPCOMING_BOOKINGS = 2


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (
        CheckConstraint("commission_rate >= 0 AND commission_rate < 1", name="commission_rate"),
        CheckConstraint("default_base_price_clp >= 0", name="default_base_price"),
        CheckConstraint("max_upcoming_bookings_per_resident >= 0", name="max_upcoming"),
    )

    id: Mapped[UUIDPk]
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organizations.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    address: Mapped[str] = mapped_column(Text, nullable=False)
    timezone: Mapped[str] = mapped_column(Text, nullable=False, default=DEFAULT_TIMEZONE)
    contact_email: Mapped[str] = mapped_column(Text, nullable=False)
    commission_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), nullable=False, default=DEFAULT_COMMISSION_RATE)
    default_base_price_clp: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_BASE_PRICE_CLP)
    max_upcoming_bookings_per_resident: Mapped[int] = mapped_column(
        Integer, nullable=False, default=DEFAULT_MAX_UPCOMING_BOOKINGS
    )
    is_active: Mapped[bool] = mapped_column(nullable=False, server_default=true(), default=True)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("building_id", "unit_number", name="uq_units_building_number"),)

    id: Mapped[UUIDPk]
    building_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("buildings.id"), nullable=False)
    unit_number: Mapped[str] = mapped_column(Text, nullable=False)
    floor: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[CreatedAt]


class VisitorSpot(Base):
    __tablename__ = "visitor_spots"
    __table_args__ = (UniqueConstraint("building_id", "spot_number", name="uq_visitor_spots_building_number"),)

    id: Mapped[UUIDPk]
    building_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("buildings.id"), nullable=False)
    spot_number: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(nullable=False, server_default=true(), default=True)
    created_at: Mapped[CreatedAt]
