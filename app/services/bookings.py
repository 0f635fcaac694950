"""The booking use cases, booking and cancelling: the core promise under contention (DOMAIN.md).

Only the use cases live here: the rules are ``domain.bookings`` (``eligibility``, the state
machine), the reads ``booking_queries``, the document ``booking_documents``, who may do what
``rbac``.

``book`` runs inside a ``booking.create`` job's transaction: it locks the resident (so their
limit of upcoming bookings holds against their own concurrent requests), reads the facts and asks
``rules.eligibility``, prices the block, claims it with a compare-and-swap on its version (``available -> reserved``),
inserts the confirmed booking and its audit row; the job runner commits all of it together with
the job's terminal state. Losing the race is the typed ``spot-unavailable`` outcome, and the
partial unique index (one live booking per block) is the backstop that answers the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from typing import Any

from sqlalchemy import DateTime, Integer, Uuid, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from app.domain import bookings as rules
from app.domain.bookings import BookingStatus
from app.extensions import db
from app.jobs import JobRun
from app.models import AvailabilityBlock, BlockStatus, Booking, Building, Resident, User, VisitorSpot
from app.problems import Problem
from app.security import rbac
from app.security.crypto import blind_index
from app.security.rbac import Capability, Principal
from app.services import audit, blocklist, booking_queries, domain_events, pricing
from app.services.auth import load_principal
from app.services.booking_documents import booking_document, document_of

CODE_ATTEMPTS = 5

# The booking job's statements, built once with bound parameters: every booking runs them, and
# building a statement (its clauses, then its cache key) cost more Python than executing it.

#: The resident (locked: one booking decision at a time per resident, so the limit holds), their
#: e-mail's blind index, the block, its building and spot, and the transaction's ``now()``.
_READ = (
    select(Resident, User.email_bidx, AvailabilityBlock, Building, VisitorSpot.spot_number, func.now())
    .join(User, User.id == Resident.user_id)
    .outerjoin(AvailabilityBlock, AvailabilityBlock.id == bindparam("block_id", type_=Uuid))
    .outerjoin(Building, Building.id == AvailabilityBlock.building_id)
    .outerjoin(VisitorSpot, VisitorSpot.id == AvailabilityBlock.spot_id)
    .where(Resident.user_id == bindparam("user_id", type_=Uuid))
    .with_for_update(of=Resident)
)

#: The resident's upcoming bookings and whether the blocklist matches (``blocklist.MATCH_EXISTS``).
_UPCOMING_AND_BLOCKED = select(
    select(func.count())
    .select_from(Booking)
    .where(
        Booking.resident_id == bindparam("resident_id", type_=Uuid),
        Booking.status.in_([str(s) for s in rules.UPCOMING]),
        Booking.block_end > bindparam("now", type_=DateTime(timezone=True)),
    )
    .scalar_subquery(),
    blocklist.MATCH_EXISTS,
)

#: The block's compare-and-swap, ``available -> reserved``, on the version read.
_RESERVE = (
    update(AvailabilityBlock)
    .where(
        AvailabilityBlock.id == bindparam("block_id", type_=Uuid),
        AvailabilityBlock.version == bindparam("version", type_=Integer),
        AvailabilityBlock.status == BlockStatus.AVAILABLE,
    )
    .values(status=BlockStatus.RESERVED, version=AvailabilityBlock.version + 1, updated_at=func.now())
    .execution_options(synchronize_session=False)
)


def book(run: JobRun) -> dict[str, Any]:
    """The ``booking.create`` job. Raises a typed Problem for every refusal; changes nothing then.

    About eight statements in all: everything the checks need is read in two queries, the winning
    rule in a third, then the compare-and-swap, the insert and the audit row.
    """
    payload = run.payload
    block_id = uuid.UUID(payload["availability_block_id"])
    row = db.session.execute(_READ, {"block_id": block_id, "user_id": run.owner_user_id}).one_or_none()
    if row is None:  # not a resident: the view refused it already (rbac, Capability.BOOK); the job agrees
        raise rbac.Forbidden(rbac.FORBIDDEN_DETAIL[Capability.BOOK])
    resident, email_bidx, block, building, spot_number, now = row
    refusal = rules.eligibility(_facts(resident, email_bidx, block, building, now, payload))
    if refusal is not None:
        raise Problem(refusal.slug, refusal.detail)
    price, rule = pricing.price_block(block, building)
    expected = payload.get("expected_price_clp")
    if expected is not None and int(expected) != price.price_clp:
        raise Problem(
            "price-changed",
            f"The price is now {price.price_clp} CLP, not {expected}.",
            extra={"price_clp": price.price_clp},
        )
    claimed = db.session.execute(_RESERVE, {"block_id": block.id, "version": block.version}).rowcount
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
    domain_events.booking_changed(
        inserted, BookingStatus.CONFIRMED, spot_number=spot_number, organization_id=building.organization_id
    )
    return {"booking": booking_document(inserted, spot_number)}


def _facts(
    resident: Resident,
    email_bidx: bytes,
    block: AvailabilityBlock | None,
    building: Building | None,
    now: Any,
    payload: dict[str, Any],
) -> rules.BookingFacts:
    """The facts ``rules.eligibility`` decides on.

    The resident's upcoming bookings and the blocklist are read in one more statement, and only
    for a block of their own building: otherwise the rules refuse before they look at those.
    """
    facts = rules.BookingFacts(
        now=now,
        resident_verified=resident.verified_at is not None,
        resident_building_id=resident.building_id,
        block_building_id=block.building_id if block is not None else None,
        block_start=block.start_at if block is not None else None,
    )
    if block is None or building is None or block.building_id != resident.building_id:
        return facts
    upcoming, blocked = db.session.execute(
        _UPCOMING_AND_BLOCKED,
        {
            "resident_id": resident.id,
            "now": now,
            **blocklist.match_parameters(building, _identity_checks(resident, email_bidx, payload)),
        },
    ).one()
    return dataclasses.replace(
        facts,
        block_available=block.status == BlockStatus.AVAILABLE,
        building_active=building.is_active,
        upcoming_bookings=upcoming,
        max_upcoming_bookings=building.max_upcoming_bookings_per_resident,
        blocklisted=bool(blocked),
    )


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
#: Model attribute names to column keys (the encrypted columns are stored as ``*_encrypted``).
_COLUMN_OF = {attr.key: attr.columns[0].key for attr in Booking.__mapper__.column_attrs}
#: The insert; a confirmation code already taken inserts nothing (and returns no row).
_INSERT_BOOKING = (
    pg_insert(_BOOKINGS)
    .on_conflict_do_nothing(index_elements=[_BOOKINGS.c.confirmation_code])
    .returning(_BOOKINGS.c.id, _BOOKINGS.c.created_at)
)


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """Model attribute names to column keys (the encrypted columns are stored as ``*_encrypted``)."""
    return {_COLUMN_OF[name]: value for name, value in values.items()}


def _insert_booking(values: dict[str, Any]) -> tuple[uuid.UUID, str, Any]:
    """Insert with a fresh confirmation code (regenerated on the rare collision): id, code, created_at.

    A live booking already holding the block violates the partial unique index: this database
    backstop answers exactly like a lost compare-and-swap.
    """
    for _ in range(CODE_ATTEMPTS):
        code = rules.new_confirmation_code()
        try:
            inserted = db.session.execute(
                _INSERT_BOOKING, {"id": uuid.uuid4(), "confirmation_code": code, **_columns(values)}
            ).first()
        except IntegrityError as exc:
            raise Problem("spot-unavailable", "Someone else booked that block first.") from exc
        if inserted is not None:
            return inserted.id, code, inserted.created_at
    raise Problem("internal-error", "Could not allocate a confirmation code.")


def cancel(run: JobRun) -> dict[str, Any]:
    """The ``booking.cancel`` job: the block becomes available again; cancelling twice answers the same.

    The booker may cancel before the block starts, the building's staff at any time, support never
    (``rbac``: ``cancel_booking``, ``cancel_started``); anyone else gets 404.
    """
    principal = principal_for(run.owner_user_id)
    booking, building = booking_queries.booking_for(
        principal, uuid.UUID(run.payload["booking_id"]), Capability.CANCEL_BOOKING, lock=True
    )
    if booking.status == BookingStatus.CANCELLED:
        return {"booking": document_of(booking)}
    is_staff = rbac.can(principal, Capability.CANCEL_STARTED, rbac.of_booking(booking, building))
    is_booker = principal is not None and booking.resident_id == principal.resident_id
    now = db.session.execute(select(func.now())).scalar_one()
    if not is_staff and booking.block_start <= now:
        raise Problem("invalid-transition", "The block has started; ask the building's staff to cancel.")
    change_status(booking, BookingStatus.CANCELLED, cancelled_at=func.now())
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
    return {"booking": document_of(booking)}


def change_status(booking: Booking, target: BookingStatus, **values: Any) -> None:
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
    domain_events.booking_changed(booking, target)


def principal_for(user_id: uuid.UUID | None) -> Principal | None:
    """The authorization view of a user, for jobs acting on their behalf."""
    return load_principal(user_id, "job") if user_id is not None else None
