"""The one JSON shape of a booking, for API answers and ``booking.*`` job results.

Kept apart from the use cases so that the API's response model can replace it in one place.
Spot numbers are read in one query per page (no query per row).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.domain.timefmt import rfc3339
from app.extensions import db
from app.models import Booking, VisitorSpot


def booking_document(booking: Booking, spot_number: str) -> dict[str, Any]:
    return {
        "id": str(booking.id),
        "status": booking.status,
        "confirmation_code": booking.confirmation_code,
        "price_clp": booking.price_clp,
        "commission_clp": booking.commission_clp,
        "availability_block_id": str(booking.block_id),
        "building_id": str(booking.building_id),
        "spot_number": spot_number,
        "start": rfc3339(booking.block_start),
        "end": rfc3339(booking.block_end),
        "visitor_name": booking.visitor_name,
        "vehicle_plate": booking.vehicle_plate,
        "visitor_phone": booking.visitor_phone,
        "created_at": rfc3339(booking.created_at),
    }


def booking_documents(bookings: list[Booking]) -> list[dict[str, Any]]:
    """Documents of several bookings, their spot numbers read in one query (no query per row)."""
    spot_ids = {b.spot_id for b in bookings}
    numbers = (
        dict(
            db.session.execute(
                select(VisitorSpot.id, VisitorSpot.spot_number).where(VisitorSpot.id.in_(spot_ids))
            ).all()
        )
        if spot_ids
        else {}
    )
    return [booking_document(b, numbers[b.spot_id]) for b in bookings]


def spot_number_of(booking: Booking) -> str:
    return db.session.execute(select(VisitorSpot.spot_number).where(VisitorSpot.id == booking.spot_id)).scalar_one()


def document_of(booking: Booking) -> dict[str, Any]:
    """The document of one stored booking."""
    return booking_document(booking, spot_number_of(booking))
