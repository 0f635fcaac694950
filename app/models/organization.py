"""Operators and their staff: organizations, and memberships that give a role inside one.

A membership's role is ``org_admin`` (every building of the organization), ``building_admin`` or
``concierge`` (only the buildings listed on the membership). A person may hold several.
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import CheckConstraint, Column, ForeignKey, Table, Text, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Base
from app.models.columns import CreatedAt, UpdatedAt, UUIDPk


class MembershipRole(enum.StrEnum):
    ORG_ADMIN = "org_admin"
    BUILDING_ADMIN = "building_admin"
    CONCIERGE = "concierge"


membership_buildings = Table(
    "membership_buildings",
    Base.metadata,
    Column("membership_id", Uuid, ForeignKey("memberships.id", ondelete="CASCADE"), primary_key=True),
    Column("building_id", Uuid, ForeignKey("buildings.id"), primary_key=True, index=True),
)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[UUIDPk]
    name: Mapped[str] = mapped_column(Text, nullable=False)
    is_active: Mapped[bool] = mapped_column(nullable=False, server_default=true(), default=True)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint("role IN ('org_admin', 'building_admin', 'concierge')", name="role"),)

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False, index=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("organizations.id"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[CreatedAt]
    buildings: Mapped[list[Building]] = relationship(secondary=membership_buildings, lazy="selectin")


from app.models.building import Building  # noqa: E402  (mutual reference)
