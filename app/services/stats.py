"""Building and organization stats, one definition everywhere (DOMAIN.md "Stats").

Revenue and commission: the sum of ``price_clp`` / ``commission_clp`` of bookings in
``confirmed``, ``checked_in``, ``overstay`` or ``checked_out`` whose block starts in the period.
Occupancy: booked block-hours / offered block-hours of blocks starting in the period (offered =
available or reserved; a blocked block is not offered). Set-based SQL grouped by building, over
exactly the buildings the caller may see.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select

from app.domain import bookings as rules
from app.extensions import db
from app.models import AvailabilityBlock, BlockStatus, Booking, Building
from app.security import rbac
from app.security.rbac import Capability, Principal
from app.services import audit
from app.services.organizations import get_building, organization_in_scope

BOOKING_STATUSES = tuple(str(s) for s in rules.BookingStatus)


def _hours(start: Any, end: Any) -> Any:
    return func.extract("epoch", end - start) / 3600.0


def _occupancy(building_ids: list[uuid.UUID], start: datetime, end: datetime) -> dict[uuid.UUID, tuple[float, float]]:
    offered = case(
        (
            AvailabilityBlock.status.in_([BlockStatus.AVAILABLE, BlockStatus.RESERVED]),
            _hours(AvailabilityBlock.start_at, AvailabilityBlock.end_at),
        ),
        else_=0,
    )
    booked = case(
        (
            AvailabilityBlock.status == BlockStatus.RESERVED,
            _hours(AvailabilityBlock.start_at, AvailabilityBlock.end_at),
        ),
        else_=0,
    )
    rows = db.session.execute(
        select(AvailabilityBlock.building_id, func.coalesce(func.sum(offered), 0), func.coalesce(func.sum(booked), 0))
        .where(
            AvailabilityBlock.building_id.in_(building_ids),
            and_(AvailabilityBlock.start_at >= start, AvailabilityBlock.start_at < end),
        )
        .group_by(AvailabilityBlock.building_id)
    ).all()
    return {row[0]: (float(row[1]), float(row[2])) for row in rows}


def _booking_totals(building_ids: list[uuid.UUID], start: datetime, end: datetime) -> dict[uuid.UUID, dict[str, Any]]:
    """Per building: bookings by status, and revenue/commission of the revenue statuses."""
    revenue = Booking.status.in_([str(s) for s in rules.REVENUE])
    rows = db.session.execute(
        select(
            Booking.building_id,
            Booking.status,
            func.count(),
            func.coalesce(func.sum(case((revenue, Booking.price_clp), else_=0)), 0),
            func.coalesce(func.sum(case((revenue, Booking.commission_clp), else_=0)), 0),
        )
        .where(Booking.building_id.in_(building_ids), Booking.block_start >= start, Booking.block_start < end)
        .group_by(Booking.building_id, Booking.status)
    ).all()
    totals: dict[uuid.UUID, dict[str, Any]] = {}
    for building_id, status, count, revenue_clp, commission_clp in rows:
        mine = totals.setdefault(building_id, {"by_status": {}, "revenue_clp": 0, "commission_clp": 0})
        mine["by_status"][status] = int(count)
        mine["revenue_clp"] += int(revenue_clp)
        mine["commission_clp"] += int(commission_clp)
    return totals


def _summary(offered: float, booked: float, bookings: dict[str, Any] | None) -> dict[str, Any]:
    bookings = bookings or {}
    return {
        "bookings_by_status": {status: bookings.get("by_status", {}).get(status, 0) for status in BOOKING_STATUSES},
        "revenue_clp": int(bookings.get("revenue_clp", 0)),
        "commission_clp": int(bookings.get("commission_clp", 0)),
        "occupancy": round(booked / offered, 4) if offered else 0.0,
        "offered_hours": round(offered, 2),
        "booked_hours": round(booked, 2),
    }


def building_stats(
    principal: Principal, building_id: uuid.UUID, start: datetime, end: datetime, actor: audit.Actor
) -> dict[str, Any]:
    building = get_building(principal, building_id, Capability.STAFF_READ)
    offered, booked = _occupancy([building.id], start, end).get(building.id, (0.0, 0.0))
    audit.record_support_read(principal, actor, "building.stats", building_id)
    return _summary(offered, booked, _booking_totals([building.id], start, end).get(building.id))


def organization_stats(
    principal: Principal, organization_id: uuid.UUID, start: datetime, end: datetime, actor: audit.Actor
) -> dict[str, Any]:
    """Sums over the organization's buildings the caller may see, plus each building's own figures."""
    organization_in_scope(principal, organization_id, Capability.VIEW)
    buildings = list(
        db.session.execute(
            select(Building.id, Building.name)
            .where(
                Building.organization_id == organization_id,
                rbac.scope_filter(principal, Building, Capability.STAFF_READ),
            )
            .order_by(Building.name, Building.id)
        ).all()
    )
    ids = [b.id for b in buildings]
    occupancy = _occupancy(ids, start, end) if ids else {}
    bookings = _booking_totals(ids, start, end) if ids else {}
    per_building = []
    total_offered = total_booked = 0.0
    totals: dict[str, Any] = {"by_status": {}, "revenue_clp": 0, "commission_clp": 0}
    for building in buildings:
        offered, booked = occupancy.get(building.id, (0.0, 0.0))
        total_offered, total_booked = total_offered + offered, total_booked + booked
        mine = bookings.get(building.id) or {}
        totals["revenue_clp"] += mine.get("revenue_clp", 0)
        totals["commission_clp"] += mine.get("commission_clp", 0)
        for status, count in mine.get("by_status", {}).items():
            totals["by_status"][status] = totals["by_status"].get(status, 0) + count
        per_building.append({"building_id": str(building.id), "name": building.name, **_summary(offered, booked, mine)})
    audit.record_support_read(principal, actor, "organization.stats", organization_id)
    return {**_summary(total_offered, total_booked, totals), "buildings": per_building}
