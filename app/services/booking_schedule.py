"""Scheduled transitions (beat, every minute): ``no_show`` and ``overstay``.

Set-based: one UPDATE per transition, restricted to the state machine's source statuses for the
target, with the audit rows inserted by the same statement's result and one event per changed booking
(``domain_events``), all in one transaction.
"""

from __future__ import annotations

from sqlalchemy import func, insert, literal, select, update

from app.domain import bookings as rules
from app.domain.bookings import BookingStatus
from app.extensions import db
from app.models import AuditLog, Booking
from app.services import domain_events

#: What a booking event needs of each changed row (``domain_events.booking_changed``).
_EVENT_COLUMNS = (
    Booking.id,
    Booking.block_id,
    Booking.spot_id,
    Booking.building_id,
    Booking.block_start,
    Booking.block_end,
    Booking.price_clp,
    Booking.commission_clp,
    Booking.resident_id,
)


def _mark(target: BookingStatus, due: object) -> int:
    changed = db.session.execute(
        update(Booking)
        .where(Booking.status.in_(rules.sources_of(target)), due)
        .values(status=target, version=Booking.version + 1, updated_at=func.now())
        .returning(*_EVENT_COLUMNS)
        .execution_options(synchronize_session=False)
    ).all()
    if changed:
        db.session.execute(
            insert(AuditLog).from_select(
                ["actor_type", "action", "entity_type", "entity_id", "metadata"],
                select(
                    literal("system"),
                    literal(f"booking.{target}"),
                    literal("booking"),
                    func.cast(Booking.id, db.Text),
                    func.jsonb_build_object(),
                ).where(Booking.id.in_([row.id for row in changed])),
            )
        )
        domain_events.bookings_changed(changed, target)
    return len(changed)


def mark_overdue() -> dict[str, int]:
    no_show = _mark(BookingStatus.NO_SHOW, Booking.block_start < func.now() - rules.NO_SHOW_AFTER)
    overstay = _mark(BookingStatus.OVERSTAY, Booking.block_end < func.now() - rules.OVERSTAY_AFTER)
    return {"no_show": no_show, "overstay": overstay}
