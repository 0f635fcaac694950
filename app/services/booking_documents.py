"""The one shape of a booking, for API answers and ``booking.*`` job results.

The shape itself is the response model ``app.jobs.results.BookingDocument`` (what the OpenAPI
document shows); this module only gathers what it needs. Spot numbers are read in one query per
page (no query per row).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.jobs.results import BookingDocument
from app.models import Booking, VisitorSpot


def booking_document(booking: Booking, spot_number: str) -> dict[str, Any]:
    """The booking as a job result stores it (JSON of ``BookingDocument``)."""
    return BookingDocument.of(booking, spot_number).model_dump(mode="json")


def booking_documents(bookings: list[Booking]) -> list[BookingDocument]:
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
    return [BookingDocument.of(b, numbers[b.spot_id]) for b in bookings]


def spot_number_of(booking: Booking) -> str:
    return db.session.execute(select(VisitorSpot.spot_number).where(VisitorSpot.id == booking.spot_id)).scalar_one()


def document_of(booking: Booking) -> dict[str, Any]:
    """The document of one stored booking, as a job result stores it."""
    return booking_document(booking, spot_number_of(booking))
