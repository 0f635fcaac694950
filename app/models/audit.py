"""Audit trail: append-only, enforced by a database trigger (see the migration).

Rows are written in the same transaction as the change they describe, so an audit row exists if
and only if the change committed. ``details`` never holds personal data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Index, Text, Uuid, false, func, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base, db
from app.observability import trace


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        CheckConstraint("actor_type IN ('human', 'system', 'job')", name="actor_type"),
        Index("ix_audit_logs_entity", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )
    actor_type: Mapped[str] = mapped_column(Text, nullable=False)
    #: No foreign key: the trail must outlive (anonymized) users.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    entity_type: Mapped[str | None] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False, default=dict)
    ip: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(Text)
    scrubbed: Mapped[bool] = mapped_column(nullable=False, server_default=false(), default=False)


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where. Built by the API from the request, or by a job."""

    type: str  # human | system | job
    id: uuid.UUID | None = None
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(type="system")

    @classmethod
    def job(cls, owner_id: uuid.UUID | None = None) -> Actor:
        return cls(type="job", id=owner_id)


def record(
    action: str,
    actor: Actor,
    *,
    entity_type: str | None = None,
    entity_id: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Insert an audit row in the current transaction (the unit of work commits it). ``details``: no PII.

    Here, beside the model, so that every layer that changes data (services, the job pipeline)
    writes its trail the same way without the job pipeline importing the services. One Core
    statement, executed at once (after the session's autoflush, so the trail keeps its order):
    the ORM's flush machinery cost more than the insert itself on the booking path. The row
    returned is transient (its values, no ``id``).
    """
    values = {
        "actor_type": actor.type,
        "actor_id": actor.id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id) if entity_id is not None else None,
        "details": details or {},
        "ip": actor.ip,
        "user_agent": (actor.user_agent or "")[:256] or None,
        "trace_id": trace.current(),
        "scrubbed": False,
    }
    columns = {_COLUMN_KEYS.get(name, name): value for name, value in values.items()}
    db.session.execute(_INSERT, columns)
    return AuditLog(**values)


#: Built once: its construction and cache key are not paid again per row.
_INSERT = insert(AuditLog.__table__)
_COLUMN_KEYS = {"details": AuditLog.__table__.c.metadata.key}
