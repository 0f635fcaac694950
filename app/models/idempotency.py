"""Idempotency records: one per (caller, Idempotency-Key), kept 24 hours.

A record exists only for a request that succeeded: it is written in the same transaction as the
request's change (``app/services/idempotency.py``), so there is no "in flight" state. Only an
HMAC fingerprint of the request is stored, never the body; the first response is kept
(encrypted) so a replay answers exactly what the first request answered.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt
from app.models.types import EncryptedJSON


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # Deleting a job checks this foreign key: without an index every purged job scans the table.
        Index("ix_idempotency_keys_job_id", "job_id", postgresql_where=text("job_id IS NOT NULL")),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    response_status: Mapped[int] = mapped_column(Integer, nullable=False)
    response_body: Mapped[Any | None] = mapped_column(EncryptedJSON("idempotency_keys.response_body"))
    response_location: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("jobs.id"))
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
