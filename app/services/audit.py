"""Audit rows, added to the caller's transaction so they commit (or roll back) with the change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.extensions import db
from app.models import AuditLog
from app.observability import trace


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
    """Add an audit row to the current session; the caller commits. ``details`` must hold no PII."""
    row = AuditLog(
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        details=details or {},
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:256] or None,
        trace_id=trace.current(),
    )
    db.session.add(row)
    return row


def record_support_read(
    principal: Any, actor: Actor, entity_type: str, entity_id: Any, details: dict[str, Any] | None = None
) -> None:
    """Support staff may read tenant data everywhere, and every such read leaves a trace.

    A list read records one row: ``entity_id`` is what the list is of (a building, or none),
    ``details`` the filters and the ids of the rows it showed (ids only, never their contents).

    The row is committed at once (a read has no transaction of its own to ride on) without
    expiring what the read already loaded: the page is rendered from the rows as they were read,
    instead of reloading them one statement per row.
    """
    if getattr(principal, "is_support", False):
        record("support.read", actor, entity_type=entity_type, entity_id=entity_id, details=details)
        session = db.session()
        expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire_on_commit


def listed(rows: list[Any], filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """``details`` of a list read: the ids of the rows shown, and the filters that were set (by query name)."""
    return {
        "ids": [str(row.id) for row in rows],
        "filters": {name: value for name, value in (filters or {}).items() if value is not None},
    }
