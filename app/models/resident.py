"""Residents: users with a resident profile in one unit of one building.

Names, RUT and phone are encrypted; RUT and phone are found through blind indexes of their
normalized forms (the RUT is unique among residents). Self sign-up creates an unverified
resident; staff of the building verify them. Unverified residents can log in but not book.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, UpdatedAt, UUIDPk
from app.models.types import EncryptedText


class ResidentStatus(enum.StrEnum):
    PENDING_VERIFICATION = "pending_verification"
    VERIFIED = "verified"


class Resident(Base):
    __tablename__ = "residents"
    __table_args__ = (Index("ix_residents_building_created", "building_id", "created_at"),)

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False, unique=True)
    building_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("buildings.id"), nullable=False)
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("units.id"), nullable=False)
    first_name: Mapped[str] = mapped_column("first_name_encrypted", EncryptedText("residents.first_name"))
    last_name: Mapped[str] = mapped_column("last_name_encrypted", EncryptedText("residents.last_name"))
    #: NULL once the resident is anonymized (the RUT may then register again).
    rut: Mapped[str | None] = mapped_column("rut_encrypted", EncryptedText("residents.rut"))
    rut_bidx: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    phone: Mapped[str | None] = mapped_column("phone_encrypted", EncryptedText("residents.phone"))
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    @property
    def status(self) -> str:
        return ResidentStatus.VERIFIED if self.verified_at else ResidentStatus.PENDING_VERIFICATION
