"""Audit rows, added to the use case's unit of work so they commit (or roll back) with the change.

``Actor`` and ``record`` live beside the model (``app/models/audit.py``) so the job pipeline can
write them too; they are re-exported here for the services.
"""

from __future__ import annotations

from typing import Any

from app.models.audit import Actor, record

__all__ = ["Actor", "listed", "record", "record_support_read"]


def record_support_read(
    principal: Any, actor: Actor, entity_type: str, entity_id: Any, details: dict[str, Any] | None = None
) -> None:
    """Support staff may read tenant data everywhere, and every such read leaves a trace.

    A list read records one row: ``entity_id`` is what the list is of (a building, or none),
    ``details`` the filters and the ids of the rows it showed (ids only, never their contents).

    The row rides on the read's unit of work, which commits it once the page is built (a read
    that fails records no read).
    """
    if getattr(principal, "is_support", False):
        record("support.read", actor, entity_type=entity_type, entity_id=entity_id, details=details)


def listed(rows: list[Any], filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """``details`` of a list read: the ids of the rows shown, and the filters that were set (by query name)."""
    return {
        "ids": [str(row.id) for row in rows],
        "filters": {name: value for name, value in (filters or {}).items() if value is not None},
    }
