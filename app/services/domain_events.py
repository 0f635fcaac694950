"""What each service emits: the event data of API.md built from the rows the use case changed.

Services call these helpers inside their unit of work, right where the change is made; the
helpers only read what the event needs (a spot number, an organization id) and call
``app.events.record``. Data never carries personal data (app/domain/events.py enforces the keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from app.domain.bookings import BookingStatus
from app.domain.events import EventType
from app.domain.timefmt import rfc3339
from app.events import record
from app.extensions import db
from app.models import Building, Resident, VisitorSpot

#: The booking status a transition reaches -> the event it emits.
BOOKING_EVENT: dict[str, EventType] = {
    BookingStatus.CONFIRMED: EventType.BOOKING_CONFIRMED,
    BookingStatus.CANCELLED: EventType.BOOKING_CANCELLED,
    BookingStatus.CHECKED_IN: EventType.BOOKING_CHECKED_IN,
    BookingStatus.CHECKED_OUT: EventType.BOOKING_CHECKED_OUT,
    BookingStatus.NO_SHOW: EventType.BOOKING_NO_SHOW,
    BookingStatus.OVERSTAY: EventType.BOOKING_OVERSTAY,
}


def booking_changed(
    booking: Any, status: str, *, spot_number: str | None = None, organization_id: uuid.UUID | None = None
) -> None:
    """Record the event of ``booking`` reaching ``status`` (a Booking, or a row with its columns)."""
    if spot_number is None or organization_id is None:
        spot_number, organization_id = _spot_and_organization(booking.spot_id, booking.building_id)
    record(
        BOOKING_EVENT[status].value,
        organization_id=organization_id,
        building_id=booking.building_id,
        aggregate=("booking", booking.id),
        data={
            "booking_id": str(booking.id),
            "availability_block_id": str(booking.block_id),
            "spot_number": spot_number,
            "start": rfc3339(booking.block_start),
            "end": rfc3339(booking.block_end),
            "status": str(status),
            "price_clp": booking.price_clp,
            "commission_clp": booking.commission_clp,
            "resident_id": str(booking.resident_id),
        },
    )


def bookings_changed(rows: Iterable[Any], status: str) -> None:
    """``booking_changed`` for a set-based transition: one read for every spot and organization."""
    rows = list(rows)
    if not rows:
        return
    spots = dict(
        db.session.execute(
            select(VisitorSpot.id, VisitorSpot.spot_number).where(VisitorSpot.id.in_({r.spot_id for r in rows}))
        ).all()
    )
    organizations = dict(
        db.session.execute(
            select(Building.id, Building.organization_id).where(Building.id.in_({r.building_id for r in rows}))
        ).all()
    )
    for row in rows:
        booking_changed(row, status, spot_number=spots[row.spot_id], organization_id=organizations[row.building_id])


def _spot_and_organization(spot_id: uuid.UUID, building_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    spot_number, organization_id = db.session.execute(
        select(VisitorSpot.spot_number, Building.organization_id)
        .join(Building, Building.id == VisitorSpot.building_id)
        .where(VisitorSpot.id == spot_id, Building.id == building_id)
    ).one()
    return spot_number, organization_id


def gate_denied(booking: Any, attempted: str, reason: str, organization_id: uuid.UUID | None = None) -> None:
    if organization_id is None:
        organization_id = db.session.execute(
            select(Building.organization_id).where(Building.id == booking.building_id)
        ).scalar_one()
    record(
        EventType.GATE_DENIED.value,
        organization_id=organization_id,
        building_id=booking.building_id,
        aggregate=("booking", booking.id),
        data={"booking_id": str(booking.id), "attempted": attempted, "reason": reason},
    )


def resident_changed(type_: EventType, resident: Resident, status: str, organization_id: uuid.UUID) -> None:
    record(
        type_.value,
        organization_id=organization_id,
        building_id=resident.building_id,
        aggregate=("resident", resident.id),
        data={
            "resident_id": str(resident.id),
            "user_id": str(resident.user_id),
            "unit_id": str(resident.unit_id),
            "status": status,
        },
    )


def user_changed(type_: EventType, user_id: uuid.UUID) -> None:
    """A user's event: the organization of their resident profile's building, if any (else a platform event)."""
    row = db.session.execute(
        select(Building.organization_id, Building.id)
        .join(Resident, Resident.building_id == Building.id)
        .where(Resident.user_id == user_id)
    ).first()
    record(
        type_.value,
        organization_id=row[0] if row else None,
        building_id=row[1] if row else None,
        aggregate=("user", user_id),
        data={"user_id": str(user_id)},
    )


def user_anonymized(user_id: uuid.UUID, organization_id: uuid.UUID | None, building_id: uuid.UUID | None) -> None:
    """``user.anonymized``: the id only (its resident profile's place is known to the batch already)."""
    record(
        EventType.USER_ANONYMIZED.value,
        organization_id=organization_id,
        building_id=building_id,
        aggregate=("user", user_id),
        data={"user_id": str(user_id)},
    )


def pricing_recalculated(job_id: uuid.UUID, building_ids: list[uuid.UUID], blocks_updated: int) -> None:
    organizations = dict(
        db.session.execute(select(Building.id, Building.organization_id).where(Building.id.in_(building_ids))).all()
    )
    for building_id in building_ids:
        if building_id not in organizations:
            continue
        record(
            EventType.PRICING_RECALCULATED.value,
            organization_id=organizations[building_id],
            building_id=building_id,
            aggregate=("building", building_id),
            data={"job_id": str(job_id), "buildings": len(building_ids), "blocks_updated": blocks_updated},
        )


def availability_generated(job_id: uuid.UUID, building_id: uuid.UUID, created: int, skipped: int) -> None:
    organization_id = db.session.execute(
        select(Building.organization_id).where(Building.id == building_id)
    ).scalar_one_or_none()
    if organization_id is None:
        return
    record(
        EventType.AVAILABILITY_GENERATED.value,
        organization_id=organization_id,
        building_id=building_id,
        aggregate=("building", building_id),
        data={"job_id": str(job_id), "blocks_created": created, "blocks_skipped": skipped},
    )
