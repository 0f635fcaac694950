"""Booking and cancelling: the product's core promise under contention (DOMAIN.md "Bookings").

``book`` runs inside a ``booking.create`` job's transaction: it locks the resident (so their
limit of upcoming bookings holds against their own concurrent requests), checks every rule,
prices the block, claims it with a compare-and-swap on its version (``available -> reserved``),
inserts the confirmed booking and its audit row; the job runner commits all of it together with
the job's terminal state. Losing the race is the typed ``spot-unavailable`` outcome, and the
partial unique index (one live booking per block) is the backstop that answers the same.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.domain import bookings as rules
from app.domain.bookings import BookingStatus
from app.domain.timefmt import rfc3339
from app.extensions import db
from app.jobs import JobRun
from app.models import AvailabilityBlock, BlockStatus, Booking, Building, Resident, User, VisitorSpot
from app.problems import Problem
from app.security import rbac
from app.security.crypto import blind_index
from app.security.rbac import Principal
from app.services import audit, blocklist, pricing
from app.services.pagination import paginate

CODE_ATTEMPTS = 5


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


def spot_number_of(booking: Booking) -> str:
    return db.session.execute(select(VisitorSpot.spot_number).where(VisitorSpot.id == booking.spot_id)).scalar_one()


def book(run: JobRun) -> dict[str, Any]:
    """The ``booking.create`` job. Raises a typed Problem for every refusal; changes nothing then."""
    payload = run.payload
    resident = db.session.execute(
        select(Resident).where(Resident.user_id == run.owner_user_id).with_for_update()
    ).scalar_one_or_none()
    if resident is None:
        raise Problem("forbidden", "Only residents can book.")
    if resident.verified_at is None:
        raise Problem("resident-not-verified", "Your residency has not been verified by the building yet.")
    block = db.session.get(AvailabilityBlock, uuid.UUID(payload["availability_block_id"]))
    if block is None or block.building_id != resident.building_id:
        raise Problem("not-found", "No such availability block.")
    building = db.session.get(Building, block.building_id)
    assert building is not None
    if not building.is_active:
        raise Problem("spot-unavailable", "The building is not taking bookings.")
    now = db.session.execute(select(func.now())).scalar_one()
    if block.start_at <= now:
        raise Problem("block-in-past", "The block has already started.")
    if block.start_at > now + rules.BOOKING_HORIZON:
        raise Problem("spot-unavailable", "Blocks can be booked at most 30 days ahead.")
    if block.status != BlockStatus.AVAILABLE:
        raise Problem("spot-unavailable", "The spot is no longer available for that block.")
    upcoming = db.session.execute(
        select(func.count())
        .select_from(Booking)
        .where(
            Booking.resident_id == resident.id,
            Booking.status.in_(rules.UPCOMING),
            Booking.block_end > now,
        )
    ).scalar_one()
    if upcoming >= building.max_upcoming_bookings_per_resident:
        raise Problem(
            "booking-limit-reached",
            f"You already hold {upcoming} upcoming bookings, the building's maximum.",
        )
    if _blocked(resident, building, payload):
        raise Problem("blocked", "You cannot book in this building.")
    price, rule = pricing.price_block(block, building)
    expected = payload.get("expected_price_clp")
    if expected is not None and int(expected) != price.price_clp:
        raise Problem(
            "price-changed",
            f"The price is now {price.price_clp} CLP, not {expected}.",
            extra={"price_clp": price.price_clp},
        )
    claimed = db.session.execute(
        update(AvailabilityBlock)
        .where(
            AvailabilityBlock.id == block.id,
            AvailabilityBlock.version == block.version,
            AvailabilityBlock.status == BlockStatus.AVAILABLE,
        )
        .values(status=BlockStatus.RESERVED, version=AvailabilityBlock.version + 1, updated_at=func.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise Problem("spot-unavailable", "Someone else booked that block first.")
    booking = _insert_booking(
        Booking(
            block_id=block.id,
            building_id=block.building_id,
            spot_id=block.spot_id,
            resident_id=resident.id,
            status=BookingStatus.CONFIRMED,
            visitor_name=payload["visitor_name"],
            visitor_phone=payload.get("visitor_phone"),
            vehicle_plate=payload["vehicle_plate"],
            plate_bidx=blind_index("plate", payload["vehicle_plate"], scope=str(block.building_id)),
            base_price_clp=price.base_clp,
            multiplier=price.multiplier,
            pricing_rule_id=rule.id if rule is not None else None,
            price_clp=price.price_clp,
            commission_clp=price.commission_clp,
            block_start=block.start_at,
            block_end=block.end_at,
        )
    )
    audit.record(
        "booking.created",
        audit.Actor("job", run.owner_user_id),
        entity_type="booking",
        entity_id=booking.id,
        details={"block_id": str(block.id), "price_clp": price.price_clp, "job_id": str(run.id)},
    )
    return {"booking": booking_document(booking, spot_number_of(booking))}


def _blocked(resident: Resident, building: Building, payload: dict[str, Any]) -> bool:
    """The resident's e-mail, phone and RUT, the plate and the request's IP against the blocklist."""
    user = db.session.get(User, resident.user_id)
    checks = [("rut", resident.rut_bidx), ("plate", blocklist.index_of("plate", payload["vehicle_plate"]))]
    if user is not None:
        checks.append(("email", user.email_bidx))
    if resident.phone_bidx is not None:
        checks.append(("phone", resident.phone_bidx))
    if payload.get("visitor_phone"):
        checks.append(("phone", blocklist.index_of("phone", payload["visitor_phone"])))
    if payload.get("ip"):
        with contextlib.suppress(ValueError):  # no usable address (e.g. a unix socket): nothing to check
            checks.append(("ip", blocklist.index_of("ip", payload["ip"])))
    return blocklist.is_blocked(building, checks)


def _insert_booking(booking: Booking) -> Booking:
    """Insert with a fresh confirmation code, regenerated on the (rare) collision."""
    for _ in range(CODE_ATTEMPTS):
        booking.confirmation_code = rules.new_confirmation_code()
        savepoint = db.session.begin_nested()
        db.session.add(booking)
        try:
            savepoint.commit()
            return booking
        except IntegrityError as exc:
            savepoint.rollback()
            constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", "") or ""
            if "confirmation_code" not in constraint:
                raise Problem("spot-unavailable", "Someone else booked that block first.") from exc
    raise Problem("internal-error", "Could not allocate a confirmation code.")


def cancel(run: JobRun) -> dict[str, Any]:
    """The ``booking.cancel`` job: the block becomes available again; cancelling twice answers the same."""
    booking_id = uuid.UUID(run.payload["booking_id"])
    booking = db.session.get(Booking, booking_id, with_for_update=True)
    building = db.session.get(Building, booking.building_id) if booking else None
    if booking is None or building is None:
        raise Problem("not-found", "No such booking.")
    principal = principal_for(run.owner_user_id)
    if principal is None:
        raise Problem("not-found", "No such booking.")
    is_booker, is_staff = require_cancel_right(principal, booking)
    if booking.status == BookingStatus.CANCELLED:
        return {"booking": booking_document(booking, spot_number_of(booking))}
    now = db.session.execute(select(func.now())).scalar_one()
    if not is_staff and booking.block_start <= now:
        raise Problem("invalid-transition", "The block has started; ask the building's staff to cancel.")
    _transition(booking, BookingStatus.CANCELLED, cancelled_at=func.now())
    released = db.session.execute(
        update(AvailabilityBlock)
        .where(AvailabilityBlock.id == booking.block_id, AvailabilityBlock.status == BlockStatus.RESERVED)
        .values(status=BlockStatus.AVAILABLE, version=AvailabilityBlock.version + 1, updated_at=func.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    audit.record(
        "booking.cancelled",
        audit.Actor("job", run.owner_user_id),
        entity_type="booking",
        entity_id=booking.id,
        details={"by": "resident" if is_booker else "staff", "block_released": bool(released)},
    )
    db.session.refresh(booking)
    return {"booking": booking_document(booking, spot_number_of(booking))}


def _transition(booking: Booking, target: BookingStatus, **values: Any) -> None:
    """The single writer of a booking's status: state machine check, then compare-and-swap."""
    try:
        rules.transition(booking.status, target)
    except rules.InvalidTransition as exc:
        raise Problem("invalid-transition", str(exc).capitalize() + ".") from exc
    changed = db.session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.version == booking.version, Booking.status == booking.status)
        .values(status=target, version=Booking.version + 1, updated_at=func.now(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise Problem("version-conflict", "The booking changed meanwhile; read it again.")


def principal_for(user_id: uuid.UUID | None) -> Principal | None:
    """The authorization view of a user, for jobs acting on their behalf."""
    from app.services.auth import load_principal

    return load_principal(user_id, "job") if user_id is not None else None


def require_cancel_right(principal: Principal, booking: Booking) -> tuple[bool, bool]:
    """Who may cancel: the booker, or the building's staff (managers and the gate); 404 / 403 otherwise.

    Returns (is_booker, is_staff). Support may read bookings but never changes them (403).
    """
    if not may_see(principal, booking):
        raise Problem("not-found", "No such booking.")
    is_booker = principal.resident_id is not None and booking.resident_id == principal.resident_id
    building = db.session.get(Building, booking.building_id)
    capabilities = rbac.building_capabilities(principal, building) if building else set()
    is_staff = bool(capabilities & {rbac.MANAGE, rbac.GATE})
    if not is_booker and not is_staff:
        raise Problem("forbidden", "Only the resident who booked or the building's staff can cancel.")
    return is_booker, is_staff


# --- reads ----------------------------------------------------------------------------------


def visible_booking(principal: Principal, booking_id: uuid.UUID, actor: audit.Actor | None = None) -> Booking:
    """Residents see their own bookings; staff of the building (gate or staff_read) see its bookings."""
    booking = db.session.get(Booking, booking_id)
    if booking is None or not may_see(principal, booking):
        raise Problem("not-found", "No such booking.")
    if actor is not None:
        audit.record_support_read(principal, actor, "booking", booking_id)
    return booking


def may_see(principal: Principal, booking: Booking) -> bool:
    if principal.resident_id is not None and booking.resident_id == principal.resident_id:
        return True
    building = db.session.get(Building, booking.building_id)
    capabilities = rbac.building_capabilities(principal, building) if building else set()
    return bool(capabilities & {rbac.GATE, rbac.STAFF_READ})


def list_bookings(
    principal: Principal,
    *,
    status: str | None,
    start: Any,
    end: Any,
    limit: int,
    cursor: str | None,
) -> tuple[list[Booking], str | None]:
    staff_buildings = select(Building.id).where(
        rbac.building_scope(principal, rbac.GATE) | rbac.building_scope(principal, rbac.STAFF_READ)
    )
    visible = Booking.building_id.in_(staff_buildings)
    if principal.resident_id is not None:
        visible = visible | (Booking.resident_id == principal.resident_id)
    query = select(Booking).where(visible)
    if status:
        query = query.where(Booking.status == status)
    if start is not None:
        query = query.where(Booking.block_start >= start)
    if end is not None:
        query = query.where(Booking.block_start < end)
    return paginate(query, [Booking.block_start, Booking.id], limit=limit, cursor=cursor)
