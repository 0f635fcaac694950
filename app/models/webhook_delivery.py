"""Outgoing signed callbacks: one row per job with a callback_url, retried until delivered.

The row is written in the same transaction as the job's terminal state (a transactional
outbox), so a crash between commit and send never loses a callback. The row id is the
Standard Webhooks ``webhook-id``: retries carry the same id so receivers can de-duplicate.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, Timestamp, UpdatedAt, UUIDPk
from app.models.types import EncryptedText


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'gone', 'failed')", name="status"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[UUIDPk]
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("jobs.id"), nullable=False, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    url: Mapped[str] = mapped_column("url_encrypted", EncryptedText("webhook_deliveries.url"), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    delivered_at: Mapped[Timestamp]
