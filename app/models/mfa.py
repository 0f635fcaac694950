"""Single-use MFA recovery codes, stored only as keyed hashes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, UUIDPk


class MfaRecoveryCode(Base):
    __tablename__ = "mfa_recovery_codes"

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False, index=True)
    #: HMAC-SHA256 of the normalized code under the blind-index key (codes carry 50 bits of entropy,
    #: so a keyed hash is enough and lookup stays O(1)).
    code_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]
