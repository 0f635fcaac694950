"""Operator webhook endpoints and their deliveries (API.md "Events and operator webhooks").

An endpoint belongs to an organization: a URL (encrypted: it can hold a token), the event types
it subscribes to (``["*"]`` for all), and its own ``whsec_`` signing secret (encrypted with the
keyring like every other secret, shown only on creation and rotation). ``failing_since`` is the
first failed attempt since the last success (NULL while healthy); an endpoint whose attempts
have all failed for 24 h is ``disabled`` and receives nothing more.

A delivery row is one (endpoint, event) pair, written by the ``operator_webhooks`` durable
subscriber in the same transaction as its receipt; its retries live in the row
(``next_attempt_at``), never in Celery ETAs. The body sent is the event document itself, ids and
facts only, so a delivery row holds no personal data at all (nothing for a GDPR scrub to do).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, Timestamp, UpdatedAt, UUIDPk
from app.models.types import EncryptedText


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("status IN ('enabled', 'disabled')", name="status"),
        Index("ix_webhook_endpoints_organization_id", "organization_id", "created_at", "id"),
    )

    id: Mapped[UUIDPk]
    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column("url_encrypted", EncryptedText("webhook_endpoints.url"), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column("secret_encrypted", EncryptedText("webhook_endpoints.secret"), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="enabled", server_default="enabled")
    failing_since: Mapped[Timestamp]
    disabled_at: Mapped[Timestamp]
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


class EndpointDelivery(Base):
    __tablename__ = "webhook_endpoint_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'gone', 'failed')", name="status"),
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_endpoint_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_endpoint_deliveries_event_id", "event_id"),
    )

    id: Mapped[UUIDPk]
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("events.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    delivered_at: Mapped[Timestamp]
