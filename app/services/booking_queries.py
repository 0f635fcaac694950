"""Reads of bookings: one by id for a given capability, and the caller's list.

Residents see their own bookings; the staff of a building (gate or staff_read) and support see
its bookings; anyone else gets 404, like an id that does not exist (``rbac.of_booking``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from app.domain.timefmt import rfc3339
from app.extensions import db
from app.models import Booking, Building
from app.models.pagination import paginate
from app.security import rbac
from app.security.rbac import Capability, Principal
from app.services import audit


def booking_for(
    principal: Principal | None, booking_id: uuid.UUID, capability: Capability, *, lock: bool = False
) -> tuple[Booking, Building]:
    """The booking and its building if the caller may ``capability`` it; 404 / 403 otherwise."""
    booking = db.session.get(Booking, booking_id, with_for_update=lock)
    building = db.session.get(Building, booking.building_id) if booking is not None else None
    rbac.require(principal, capability, rbac.of_booking(booking, building))
    return booking, building  # type: ignore[return-value]  # require raised if either is None


def visible_booking(principal: Principal, booking_id: uuid.UUID, actor: audit.Actor | None = None) -> Booking:
    """A booking the caller may read (a read by support is audited when ``actor`` is given)."""
    booking, _ = booking_for(principal, booking_id, Capability.READ_BOOKING)
    if actor is not None:
        audit.record_support_read(principal, actor, "booking", booking_id)
    return booking


def list_bookings(
    principal: Principal,
    *,
    status: str | None,
    start: Any,
    end: Any,
    limit: int,
    cursor: str | None,
    actor: audit.Actor,
) -> tuple[list[Booking], str | None]:
    """Residents their own bookings; staff their buildings'. A page read by support is audited."""
    query = select(Booking).where(rbac.scope_filter(principal, Booking, Capability.READ_BOOKING))
    if status:
        query = query.where(Booking.status == status)
    if start is not None:
        query = query.where(Booking.block_start >= start)
    if end is not None:
        query = query.where(Booking.block_start < end)
    rows, next_cursor = paginate(query, [Booking.block_start, Booking.id], limit=limit, cursor=cursor)
    filters = {"status": status, "from": rfc3339(start), "to": rfc3339(end)}
    audit.record_support_read(principal, actor, "bookings", None, audit.listed(rows, filters))
    return rows, next_cursor
