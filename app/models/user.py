"""People who log in: residents, staff and platform staff share this one table."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, LargeBinary, Text, Uuid, false, text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, UpdatedAt, UUIDPk
from app.models.types import EncryptedText


class PlatformRole(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    SUPPORT = "support"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("platform_role IN ('platform_admin', 'support')", name="platform_role"),
        Index(
            "ix_users_anonymized_by_job", "anonymized_by_job", postgresql_where=text("anonymized_by_job IS NOT NULL")
        ),
    )

    id: Mapped[UUIDPk]
    #: Encrypted at rest; looked up only through ``email_bidx``.
    email: Mapped[str] = mapped_column("email_encrypted", EncryptedText("users.email"), nullable=False)
    email_bidx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    #: argon2id; NULL once an account is anonymized (login impossible).
    password_hash: Mapped[str | None] = mapped_column(Text)
    platform_role: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(nullable=False, server_default=true(), default=True)
    #: Standard Webhooks secret (``whsec_...``) used to sign this user's job callbacks.
    webhook_secret: Mapped[str | None] = mapped_column(
        "webhook_secret_encrypted", EncryptedText("users.webhook_secret")
    )
    #: TOTP (RFC 6238). The secret is encrypted; ``mfa_pending_secret`` holds an enrollment until
    #: its first code is confirmed. ``mfa_last_step`` is the last accepted 30 s time step: a code of
    #: that step or an earlier one is a replay and is refused.
    mfa_enabled: Mapped[bool] = mapped_column(nullable=False, server_default=false(), default=False)
    mfa_secret: Mapped[str | None] = mapped_column("mfa_secret_encrypted", EncryptedText("users.mfa_secret"))
    mfa_pending_secret: Mapped[str | None] = mapped_column(
        "mfa_pending_secret_encrypted", EncryptedText("users.mfa_pending_secret")
    )
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: Set by a ban: every session is revoked and login refused until unbanned.
    banned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Set by anonymization (``app/services/anonymization.py``): the account is "Anonymous" for
    #: good; a re-run skips it. ``anonymized_by_job`` names the job that did it, so a bulk job
    #: resumed after a crash counts each person exactly once.
    anonymized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    anonymized_by_job: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    @property
    def roles(self) -> list[str]:
        return [self.platform_role] if self.platform_role else []

    def __repr__(self) -> str:  # never include the email
        return f"<User {self.id}>"
