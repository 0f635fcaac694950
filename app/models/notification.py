"""WhatsApp messages (``notifications``), the resident's preferences, opt-outs, password-reset codes.

A ``notifications`` row is one message to one phone: who it is for (``user_id``: the resident or
account holder; NULL for a booking's visitor, who has no account), what it says (``template`` and
its ``variables``, encrypted, rendered at send time in ``timezone``), where it goes (the
destination, encrypted, found through a blind index of the normalized phone) and how far it got
(``status``, Twilio's sid, error code, attempts and the time of each step).

Statuses: ``queued`` (row made, job submitted) -> ``sending`` (committed just before the provider
call, so a redelivered job never sends twice) -> ``sent`` (Twilio accepted it) -> ``delivered`` ->
``read``; ``failed`` / ``undelivered`` are final. A row left ``sending`` with no ``provider_sid``
after its job ended is a message whose outcome is unknown (the worker died inside the provider
call); it is never sent again (README "Notifications").

Opt-outs are kept per destination (its blind index only): a 21610/63014 answer suppresses later
booking messages to that number, whoever books for it. Reset codes keep only an HMAC of the code.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, Text, Uuid, false, text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, Timestamp, UpdatedAt, UUIDPk
from app.models.types import EncryptedJSON, EncryptedText


class NotificationStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"


class Recipient(enum.StrEnum):
    RESIDENT = "resident"  # a booking's resident
    VISITOR = "visitor"  # a booking's visitor (no account)
    ACCOUNT = "account"  # the account holder: reset codes and security notices


_STATUSES = ", ".join(f"'{s.value}'" for s in NotificationStatus)
_RECIPIENTS = ", ".join(f"'{r.value}'" for r in Recipient)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint(f"recipient IN ({_RECIPIENTS})", name="recipient"),
        CheckConstraint("channel = 'whatsapp'", name="channel"),
        Index("ix_notifications_user_created", "user_id", "created_at", "id"),
        Index("ix_notifications_booking", "booking_id"),
        Index("ix_notifications_destination", "destination_bidx"),
        Index("ix_notifications_created", "created_at"),
        Index(
            "uq_notifications_provider_sid",
            "provider_sid",
            unique=True,
            postgresql_where=text("provider_sid IS NOT NULL"),
        ),
    )

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("bookings.id"))
    recipient: Mapped[str] = mapped_column(Text, nullable=False)
    channel: Mapped[str] = mapped_column(Text, nullable=False, server_default="whatsapp", default="whatsapp")
    template: Mapped[str] = mapped_column(Text, nullable=False)
    #: E.164 phone, encrypted; NULL once scrubbed (anonymization).
    destination: Mapped[str | None] = mapped_column("destination_encrypted", EncryptedText("notifications.destination"))
    destination_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The template's variables (instants as ISO 8601), encrypted; NULL once scrubbed. A reset
    #: code's variables are dropped once it is sent (the code must not outlive its message).
    variables: Mapped[dict[str, Any] | None] = mapped_column(
        "variables_encrypted", EncryptedJSON("notifications.variables")
    )
    #: IANA zone the instants are shown in (the building's).
    timezone: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    provider_sid: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None] = mapped_column(Integer)
    #: Provider calls made (a retry after 429 is a second attempt).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    sending_at: Mapped[Timestamp]
    sent_at: Mapped[Timestamp]
    delivered_at: Mapped[Timestamp]
    read_at: Mapped[Timestamp]
    failed_at: Mapped[Timestamp]

    def __repr__(self) -> str:  # never the destination or the variables
        return f"<Notification {self.id} {self.template} {self.status}>"


class NotificationPreference(Base):
    """A user's choices; no row means the defaults (booking updates on)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    booking_updates: Mapped[bool] = mapped_column(nullable=False, server_default=true(), default=True)
    updated_at: Mapped[UpdatedAt]


class NotificationOptOut(Base):
    """A destination that answered 21610 (unsubscribed) or 63014 (blocked us): no more booking messages."""

    __tablename__ = "notification_opt_outs"

    destination_bidx: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    error_code: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[CreatedAt]


class PasswordResetCode(Base):
    """The one live reset code of an account (a new request replaces it): its HMAC, never the code."""

    __tablename__ = "password_reset_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    code_hash: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    spent: Mapped[bool] = mapped_column(nullable=False, server_default=false(), default=False)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
