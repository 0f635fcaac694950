"""Retention with a simulated clock: visitor data of a booking that ended 25 months ago is scrubbed,
23 months ago kept; the access events' plates and the notifications' destinations likewise; a
second run changes nothing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from app.unit_of_work import unit_of_work
from tests.support.privacy import place_booking
from tests.support.world import build_tenant, make_residents, new_block

pytestmark = pytest.mark.slow


def test_visitor_data_is_scrubbed_24_months_after_the_booking_ended_and_not_before(isolated_stack, api_log):
    from app.extensions import db
    from app.models import AccessEvent, Booking, Notification
    from app.services import retention

    stack = isolated_stack
    admin = stack.login(stack.create_user(role="platform_admin"))
    tenant = build_tenant(stack, admin, "Org Retain", ["R1"])
    (person,) = make_residents(stack, tenant.buildings["R1"], 1)
    old_block = tenant.blocks["R1"]
    newer_block = new_block(stack, admin, tenant.spots["R1"], starts_in_minutes=60 * 24 * 61)
    old = place_booking(stack, old_block, person, plate="OLDP11")
    newer = place_booking(stack, newer_block, person, plate="NEWP22")
    with stack.context():
        for booking_id in (old, newer):
            booking = db.session.get(Booking, uuid.UUID(booking_id))
            db.session.add(
                AccessEvent(
                    booking_id=booking.id,
                    building_id=booking.building_id,
                    action="denied",
                    attempted="check_in",
                    reason="too_early",
                    observed_plate=booking.vehicle_plate,
                    occurred_at=booking.block_end,
                )
            )
            # The message that confirmed it, written when the booking ended (a simulated age).
            db.session.add(
                Notification(
                    user_id=uuid.UUID(person["id"]),
                    booking_id=booking.id,
                    recipient="visitor",
                    template="booking_confirmed",
                    destination="+56911112222",
                    destination_bidx=b"retention-" + booking.id.bytes,
                    variables={"visitor": "Visita"},
                    timezone="America/Santiago",
                    status="delivered",
                    created_at=booking.block_end,
                )
            )
        db.session.commit()
        old_end = db.session.get(Booking, uuid.UUID(old)).block_end
        newer_end = db.session.get(Booking, uuid.UUID(newer)).block_end
        db.session.rollback()
    clock = old_end + timedelta(days=25 * 30 + 12)  # 25 months after the old one ended
    assert timedelta(days=22 * 31) < clock - newer_end < timedelta(days=24 * 30)  # about 23 months

    with stack.context():
        # By that clock every message of this run is past 24 months too, except the one dated
        # with the newer booking's end.
        cutoff = retention.months_before(clock, 24)
        due = (
            db.session.query(Notification)
            .filter(Notification.created_at < cutoff, Notification.destination.is_not(None))
            .count()
        )
        db.session.rollback()
        with unit_of_work():
            first = retention.scrub_personal_data(now=clock, batch=1)
        with unit_of_work():
            second = retention.scrub_personal_data(now=clock, batch=1)
        ids = [uuid.UUID(old), uuid.UUID(newer)]
        rows = {
            str(b.id): (b.visitor_name, b.vehicle_plate, b.plate_bidx, b.price_clp, b.status)
            for b in db.session.query(Booking).filter(Booking.id.in_(ids))
        }
        plates = {
            str(e.booking_id): e.observed_plate
            for e in db.session.query(AccessEvent).filter(AccessEvent.booking_id.in_(ids))
        }
        messages = {
            str(n.booking_id): (n.destination, n.destination_bidx is None, n.variables, n.status)
            for n in db.session.query(Notification).filter(Notification.booking_id.in_(ids))
        }
        db.session.rollback()
    assert messages[old] == (None, True, None, "delivered")  # the log of what was sent stays
    assert messages[newer] == ("+56911112222", False, {"visitor": "Visita"}, "delivered")
    assert rows[old] == ("Anonymous", None, None, 5000, "confirmed")  # amounts and status stay
    assert rows[newer][:2] == ("Visita", "NEWP22")
    assert plates == {old: None, newer: "NEWP22"}
    assert first["bookings"] == 1 and first["access_events"] == 1 and first["notifications"] == due >= 1
    assert second == {"bookings": 0, "access_events": 0, "notifications": 0, "exports": 0}
    logged = [json.loads(line) for line in api_log.read_text().splitlines() if "past retention" in line]
    assert {"bookings": 0, "access_events": 0}.items() <= logged[-1].items()
    assert logged[-2]["bookings"] == 1 and logged[-2]["retention_months"] == 24


def test_the_retention_task_is_scheduled_nightly_on_the_system_queue(isolated_stack):
    celery = isolated_stack.app.extensions["celery"]
    entry = celery.conf.beat_schedule["gdpr.retention"]
    assert entry["task"] == "gdpr.retention" and entry["schedule"].hour == {7}
    assert celery.amqp.router.route({}, "gdpr.retention")["queue"].name == "system"


def test_months_before_clamps_to_the_end_of_a_shorter_month():
    from datetime import UTC, datetime

    from app.services.retention import months_before

    assert months_before(datetime(2027, 3, 31, 12, tzinfo=UTC), 1) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert months_before(datetime(2028, 3, 31, tzinfo=UTC), 25) == datetime(2026, 2, 28, tzinfo=UTC)
    assert months_before(datetime(2026, 12, 1, tzinfo=UTC), 24) == datetime(2024, 12, 1, tzinfo=UTC)
