"""Bans: global (platform), organization-wide or building-level, of an e-mail, phone, RUT, plate or IP.

The value is kept as a blind index of its normalized form (what bookings are checked against)
plus the encrypted value for admins to read; the reason is encrypted too (it may name people).
"""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, Text, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, UUIDPk
from app.models.types import EncryptedText


class BlocklistEntry(Base):
    __tablename__ = "blocklist_entries"
    __table_args__ = (
        CheckConstraint("type IN ('email', 'phone', 'rut', 'plate', 'ip')", name="type"),
        CheckConstraint(
            "(scope = 'global' AND organization_id IS NULL AND building_id IS NULL)"
            " OR (scope = 'organization' AND organization_id IS NOT NULL AND building_id IS NULL)"
            " OR (scope = 'building' AND building_id IS NOT NULL)",
            name="scope",
        ),
        Index("ix_blocklist_entries_value", "type", "value_bidx"),
    )

    id: Mapped[UUIDPk]
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("organizations.id"))
    building_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("buildings.id"))
    type: Mapped[str] = mapped_column(Text, nullable=False)
    value: Mapped[str] = mapped_column("value_encrypted", EncryptedText("blocklist_entries.value"), nullable=False)
    value_bidx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    reason: Mapped[str | None] = mapped_column("reason_encrypted", EncryptedText("blocklist_entries.reason"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    is_active: Mapped[bool] = mapped_column(nullable=False, server_default=true(), default=True)
    created_at: Mapped[CreatedAt]
