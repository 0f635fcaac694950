"""The gate: a concierge finds a booking by code or plate, checks the guest in and out.

Every action is an access event with the plate the concierge observed, refused ones included
(``denied``): the refusal is committed as evidence with the 409 answer (``keep_changes``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, tuple_

from app.domain import bookings as rules
from app.domain.bookings import BookingStatus, InvalidPlate, normalize_code, normalize_plate
from app.extensions import db
from app.models import AccessEvent, Booking, Building
from app.problems import Problem
from app.security import rbac
from app.security.crypto import blind_index
from app.security.rbac import Capability, Principal
from app.services import audit, domain_events
from app.services.booking_queries import booking_for
from app.services.bookings import change_status

PRESENT = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.OVERSTAY)


def _gate_booking(principal: Principal, booking_id: uuid.UUID) -> tuple[Booking, Building]:
    """The booking for a gate action: 404 unless the caller may see it, 403 unless they work the gate."""
    return booking_for(principal, booking_id, Capability.GATE, lock=True)


def lookup(principal: Principal, *, confirmation_code: str | None, vehicle_plate: str | None) -> Booking:
    """A booking of one of your gate buildings, by code or by plate (the one nearest to now)."""
    gate_buildings = list(
        db.session.execute(select(Building.id).where(rbac.scope_filter(principal, Building, Capability.GATE))).scalars()
    )
    query = select(Booking).where(Booking.building_id.in_(gate_buildings))
    if confirmation_code is not None:
        query = query.where(Booking.confirmation_code == normalize_code(confirmation_code))
    else:
        try:
            plate = normalize_plate(vehicle_plate or "")
        except InvalidPlate:
            raise Problem("not-found", "No booking for that plate.") from None
        keys = [(b, blind_index("plate", plate, scope=str(b))) for b in gate_buildings]
        if not keys:
            raise Problem("not-found", "No booking for that plate.")
        query = query.where(
            tuple_(Booking.building_id, Booking.plate_bidx).in_(keys), Booking.status.in_(PRESENT)
        ).order_by(func.abs(func.extract("epoch", Booking.block_start - func.now())))
    booking = db.session.execute(query.limit(1)).scalar_one_or_none()
    if booking is None:
        raise Problem("not-found", "No such booking.")
    return booking


def _event(
    booking: Booking, principal: Principal, action: str, attempted: str, observed: str | None, reason: str | None
) -> None:
    plate = None
    if observed:
        try:
            plate = normalize_plate(observed)
        except InvalidPlate:
            plate = observed.strip()[:16]
    db.session.add(
        AccessEvent(
            booking_id=booking.id,
            building_id=booking.building_id,
            actor_id=principal.user_id,
            action=action,
            attempted=attempted,
            reason=reason,
            observed_plate=plate,
            plate_matches=(plate == booking.vehicle_plate) if plate else None,
        )
    )


def _deny(
    booking: Booking, principal: Principal, attempted: str, observed: str | None, reason: str, actor: audit.Actor
) -> Problem:
    """The refusal, to raise: its access event and audit row are kept (committed) as evidence.

    Nothing else was changed before a refusal (the booking was only read and locked), so keeping
    the unit of work's changes keeps exactly these two rows.
    """
    _event(booking, principal, "denied", attempted, observed, reason)
    domain_events.gate_denied(booking, attempted, reason)
    audit.record(
        f"gate.{attempted}_denied", actor, entity_type="booking", entity_id=booking.id, details={"reason": reason}
    )
    return Problem("invalid-transition", reason, keep_changes=True)


def check_in(principal: Principal, booking_id: uuid.UUID, observed_plate: str | None, actor: audit.Actor) -> Booking:
    booking, _ = _gate_booking(principal, booking_id)
    now = db.session.execute(select(func.now())).scalar_one()
    opens, closes = rules.check_in_window(booking.block_start, booking.block_end)
    if booking.status != BookingStatus.CONFIRMED:
        raise _deny(
            booking, principal, "check_in", observed_plate, f"A {booking.status} booking cannot be checked in.", actor
        )
    if not opens <= now <= closes:
        reason = "Check-in opens 30 minutes before the block starts." if now < opens else "The block has ended."
        raise _deny(booking, principal, "check_in", observed_plate, reason, actor)
    change_status(booking, BookingStatus.CHECKED_IN, checked_in_at=func.now())
    _event(booking, principal, "check_in", "check_in", observed_plate, None)
    audit.record("gate.check_in", actor, entity_type="booking", entity_id=booking.id)
    return db.session.get(Booking, booking_id, populate_existing=True)  # type: ignore[return-value]


def check_out(principal: Principal, booking_id: uuid.UUID, observed_plate: str | None, actor: audit.Actor) -> Booking:
    booking, _ = _gate_booking(principal, booking_id)
    if booking.status not in (BookingStatus.CHECKED_IN, BookingStatus.OVERSTAY):
        raise _deny(
            booking, principal, "check_out", observed_plate, f"A {booking.status} booking cannot be checked out.", actor
        )
    change_status(booking, BookingStatus.CHECKED_OUT, checked_out_at=func.now())
    _event(booking, principal, "check_out", "check_out", observed_plate, None)
    audit.record("gate.check_out", actor, entity_type="booking", entity_id=booking.id)
    return db.session.get(Booking, booking_id, populate_existing=True)  # type: ignore[return-value]
