"""Yield-management rules: a multiplier on the base price of blocks starting in an interval."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, Numeric, Text, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, UUIDPk


class PricingRule(Base):
    __tablename__ = "pricing_rules"
    __table_args__ = (
        CheckConstraint("multiplier > 0 AND multiplier <= 10", name="multiplier"),
        CheckConstraint("ends_at > starts_at", name="interval"),
        Index("ix_pricing_rules_building_interval", "building_id", "starts_at", "ends_at"),
    )

    id: Mapped[UUIDPk]
    building_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("buildings.id"), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 4), nullable=False)
    is_active: Mapped[bool] = mapped_column(nullable=False, server_default=true(), default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[CreatedAt]
