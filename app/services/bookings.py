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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from app.domain import bookings as rules
from app.domain.bookings import BookingStatus
from app.domain.timefmt import rfc3339
from app.extensions import db
from app.jobs import JobRun
from app.jobs.results import BookingDocument
from app.models import AvailabilityBlock, BlockStatus, Booking, Building, Resident, User, VisitorSpot
from app.problems import Problem
from app.security import rbac
from app.security.crypto import blind_index
from app.security.rbac import Principal
from app.services import audit, blocklist, pricing
from app.services.pagination import paginate

CODE_ATTEMPTS = 5


def booking_document(booking: Booking, spot_number: str) -> dict[str, Any]:
    """The booking as the API and job results show it (``app.jobs.results.BookingDocument``)."""
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


def book(run: JobRun) -> dict[str, Any]:
    """The ``booking.create`` job. Raises a typed Problem for every refusal; changes nothing then.

    About eight statements in all: everything the checks need is read in two queries, the winning
    rule in a third, then the compare-and-swap, the insert and the audit row.
    """
    payload = run.payload
    block_id = uuid.UUID(payload["availability_block_id"])
    row = db.session.execute(
        select(Resident, User.email_bidx, AvailabilityBlock, Building, VisitorSpot.spot_number, func.now())
        .join(User, User.id == Resident.user_id)
        .outerjoin(AvailabilityBlock, AvailabilityBlock.id == block_id)
        .outerjoin(Building, Building.id == AvailabilityBlock.building_id)
        .outerjoin(VisitorSpot, VisitorSpot.id == AvailabilityBlock.spot_id)
        .where(Resident.user_id == run.owner_user_id)
        .with_for_update(of=Resident)  # one booking decision at a time per resident: the limit holds
    ).one_or_none()
    if row is None:
        raise Problem("forbidden", "Only residents can book.")
    resident, email_bidx, block, building, spot_number, now = row
    if resident.verified_at is None:
        raise Problem("resident-not-verified", "Your residency has not been verified by the building yet.")
    if block is None or block.building_id != resident.building_id:
        raise Problem("not-found", "No such availability block.")
    if not building.is_active:
        raise Problem("spot-unavailable", "The building is not taking bookings.")
    if block.start_at <= now:
        raise Problem("block-in-past", "The block has already started.")
    if block.start_at > now + rules.BOOKING_HORIZON:
        raise Problem("spot-unavailable", "Blocks can be booked at most 30 days ahead.")
    if block.status != BlockStatus.AVAILABLE:
        raise Problem("spot-unavailable", "The spot is no longer available for that block.")
    upcoming, blocked = db.session.execute(
        select(
            select(func.count())
            .select_from(Booking)
            .where(
                Booking.resident_id == resident.id,
                Booking.status.in_([str(s) for s in rules.UPCOMING]),
                Booking.block_end > now,
            )
            .scalar_subquery(),
            blocklist.match_exists(building, _identity_checks(resident, email_bidx, payload)),
        )
    ).one()
    if upcoming >= building.max_upcoming_bookings_per_resident:
        raise Problem(
            "booking-limit-reached",
            f"You already hold {upcoming} upcoming bookings, the building's maximum.",
        )
    if blocked:
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
    values = {
        "block_id": block.id,
        "building_id": block.building_id,
        "spot_id": block.spot_id,
        "resident_id": resident.id,
        "status": str(BookingStatus.CONFIRMED),
        "visitor_name": payload["visitor_name"],
        "visitor_phone": payload.get("visitor_phone"),
        "vehicle_plate": payload["vehicle_plate"],
        "plate_bidx": blind_index("plate", payload["vehicle_plate"], scope=str(block.building_id)),
        "base_price_clp": price.base_clp,
        "multiplier": price.multiplier,
        "pricing_rule_id": rule.id if rule is not None else None,
        "price_clp": price.price_clp,
        "commission_clp": price.commission_clp,
        "block_start": block.start_at,
        "block_end": block.end_at,
    }
    booking_id, code, created_at = _insert_booking(values)
    audit.record(
        "booking.created",
        audit.Actor("job", run.owner_user_id),
        entity_type="booking",
        entity_id=booking_id,
        details={"block_id": str(block.id), "price_clp": price.price_clp, "job_id": str(run.id)},
    )
    # A transient (never added) Booking only to render the one document shape every reader uses.
    inserted = Booking(id=booking_id, confirmation_code=code, created_at=created_at, **values)
    return {"booking": booking_document(inserted, spot_number)}


def _identity_checks(resident: Resident, email_bidx: bytes, payload: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The resident's e-mail, phone and RUT, the plate, the visitor's phone and the request's IP."""
    checks = [
        ("rut", resident.rut_bidx),
        ("email", email_bidx),
        ("plate", blocklist.index_of("plate", payload["vehicle_plate"])),
    ]
    if resident.phone_bidx is not None:
        checks.append(("phone", resident.phone_bidx))
    if payload.get("visitor_phone"):
        checks.append(("phone", blocklist.index_of("phone", payload["visitor_phone"])))
    if payload.get("ip"):
        with contextlib.suppress(ValueError):  # no usable address (e.g. a unix socket): nothing to check
            checks.append(("ip", blocklist.index_of("ip", payload["ip"])))
    return checks


_BOOKINGS = Booking.__table__


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """Model attribute names to column names (the encrypted columns are stored as ``*_encrypted``)."""
    mapper = Booking.__mapper__
    return {mapper.attrs[name].columns[0].name: value for name, value in values.items()}


def _insert_booking(values: dict[str, Any]) -> tuple[uuid.UUID, str, Any]:
    """Insert with a fresh confirmation code (regenerated on the rare collision): id, code, created_at.

    A live booking already holding the block violates the partial unique index: this database
    backstop answers exactly like a lost compare-and-swap.
    """
    for _ in range(CODE_ATTEMPTS):
        code = rules.new_confirmation_code()
        try:
            inserted = db.session.execute(
                pg_insert(_BOOKINGS)
                .values(id=uuid.uuid4(), confirmation_code=code, **_columns(values))
                .on_conflict_do_nothing(index_elements=[_BOOKINGS.c.confirmation_code])
                .returning(_BOOKINGS.c.id, _BOOKINGS.c.created_at)
            ).first()
        except IntegrityError as exc:
            raise Problem("spot-unavailable", "Someone else booked that block first.") from exc
        if inserted is not None:
            return inserted.id, code, inserted.created_at
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
    actor: audit.Actor,
) -> tuple[list[Booking], str | None]:
    """Residents their own bookings; staff their buildings'. A page read by support is audited."""
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
    rows, next_cursor = paginate(query, [Booking.block_start, Booking.id], limit=limit, cursor=cursor)
    filters = {"status": status, "from": rfc3339(start), "to": rfc3339(end)}
    audit.record_support_read(principal, actor, "bookings", None, audit.listed(rows, filters))
    return rows, next_cursor
