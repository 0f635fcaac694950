"""Every emitting service: a committed change has exactly one event, a refused one none (issue 12 §3).

Events are read straight from the ``events`` table (what the outbox holds), by aggregate id. The
last test scans every event of the run for the personal data the run used.
"""

import json
import uuid

import pytest

from app.services import booking_schedule
from app.unit_of_work import unit_of_work
from tests.support.world import make_residents, new_block, new_spot, valid_rut

pytestmark = pytest.mark.slow

BOOKING_KEYS = {
    "booking_id",
    "availability_block_id",
    "spot_number",
    "start",
    "end",
    "status",
    "price_clp",
    "commission_clp",
    "resident_id",
}


def events_of(stack, aggregate_id, type_=None):
    return stack.sql(
        "SELECT type, data, organization_id::text, building_id::text FROM events "
        "WHERE aggregate_id = %s AND type = coalesce(%s, type) ORDER BY seq",
        (str(aggregate_id), type_),
    )


def book(stack, headers, block_id):
    body = {"availability_block_id": block_id, "visitor_name": "Visita Secreta", "vehicle_plate": "ZZ-98·76"}
    response = stack.client().post("/v1/bookings", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return stack.wait_job(headers, response.get_json()["job_id"])


def cancel(stack, headers, booking_id):
    response = stack.client().post(f"/v1/bookings/{booking_id}/cancel", json={}, headers=headers)
    assert response.status_code == 202, response.get_json()
    return stack.wait_job(headers, response.get_json()["job_id"])


def test_a_booking_confirmed_and_cancelled_has_one_event_each_and_a_lost_race_none(worker, world):
    a = world.a
    first, second = make_residents(worker, a.buildings["A1"], 2)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 200)
    winner = worker.login(first)
    job = book(worker, winner, block)
    assert job["status"] == "succeeded", job
    booking = job["result"]["booking"]
    lost = book(worker, worker.login(second), block)
    assert lost["status"] == "failed" and lost["error"]["type"].endswith("spot-unavailable"), lost

    (confirmed,) = events_of(worker, booking["id"])
    type_, data, organization_id, building_id = confirmed
    assert type_ == "booking.confirmed"
    assert set(data) == BOOKING_KEYS
    assert data["booking_id"] == booking["id"] and data["availability_block_id"] == block
    assert data["status"] == "confirmed" and data["price_clp"] == booking["price_clp"]
    assert (organization_id, building_id) == (a.organization_id, a.buildings["A1"])
    # The lost race committed nothing, its event included: the block has exactly one booking's event.
    on_block = worker.sql("SELECT count(*) FROM events WHERE data->>'availability_block_id' = %s", (block,))
    assert on_block == [(1,)]

    assert cancel(worker, winner, booking["id"])["status"] == "succeeded"
    assert cancel(worker, winner, booking["id"])["status"] == "succeeded"  # twice: the same answer, no change
    types = [row[0] for row in events_of(worker, booking["id"])]
    assert types == ["booking.confirmed", "booking.cancelled"]
    assert events_of(worker, booking["id"], "booking.cancelled")[0][1]["status"] == "cancelled"


def test_the_gate_emits_denials_check_ins_and_check_outs(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 12)
    booking = book(worker, worker.login(resident), block)["result"]["booking"]
    concierge = a.headers["concierge"]
    early = worker.client().post(f"/v1/bookings/{booking['id']}/check-in", json={}, headers=concierge)
    assert early.status_code == 409
    denied = events_of(worker, booking["id"], "gate.denied")
    assert len(denied) == 1 and denied[0][1]["attempted"] == "check_in"
    assert set(denied[0][1]) == {"booking_id", "attempted", "reason"}

    worker.sql(
        "UPDATE bookings SET block_start = now(), block_end = now() + interval '11 hours' WHERE id = %s",
        (booking["id"],),
    )
    ok = worker.client().post(f"/v1/bookings/{booking['id']}/check-in", json={}, headers=concierge)
    assert ok.status_code == 200, ok.get_json()
    out = worker.client().post(f"/v1/bookings/{booking['id']}/check-out", json={}, headers=concierge)
    assert out.status_code == 200, out.get_json()
    again = worker.client().post(f"/v1/bookings/{booking['id']}/check-out", json={}, headers=concierge)
    assert again.status_code == 409
    types = [row[0] for row in events_of(worker, booking["id"])]
    assert types == ["booking.confirmed", "gate.denied", "booking.checked_in", "booking.checked_out", "gate.denied"]


def test_the_schedule_emits_one_no_show_per_booking_it_marks(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 30)
    booking = book(worker, worker.login(resident), block)["result"]["booking"]
    worker.sql(
        "UPDATE bookings SET block_start = now() - interval '2 hours', block_end = now() + interval '9 hours' "
        "WHERE id = %s",
        (booking["id"],),
    )
    with worker.context():
        with unit_of_work():
            booking_schedule.mark_overdue()
        with unit_of_work():
            booking_schedule.mark_overdue()  # nothing left to mark: no second event
    (no_show,) = events_of(worker, booking["id"], "booking.no_show")
    assert no_show[1]["status"] == "no_show" and set(no_show[1]) == BOOKING_KEYS


def test_residents_registered_and_verified_once_and_a_refused_registration_none(worker, world):
    a = world.a
    person = {
        "email": f"emitter-{uuid.uuid4().hex[:10]}@home.test",
        "password": "resident-password",
        "first_name": "Rosa",
        "last_name": "Emisora",
        "rut": valid_rut(),
        "phone": "9 8765 4321",
        "building_id": a.buildings["A1"],
        "unit_number": "101",
    }
    refused = worker.client().post("/v1/auth/register", json={**person, "unit_number": "no-such-unit"})
    assert refused.status_code == 422
    registered = worker.client().post("/v1/auth/register", json=person)
    assert registered.status_code == 201, registered.get_json()
    resident_id = registered.get_json()["id"]
    assert worker.sql(
        "SELECT count(*) FROM events WHERE type = 'resident.registered' AND data->>'user_id' = "
        "(SELECT user_id::text FROM residents WHERE id = %s)",
        (resident_id,),
    ) == [(1,)]
    for _ in range(2):  # verifying twice verifies once
        verified = worker.client().post(f"/v1/residents/{resident_id}/verify", headers=world.admin)
        assert verified.status_code == 200, verified.get_json()
    types = [row[0] for row in events_of(worker, resident_id)]
    assert types == ["resident.registered", "resident.verified"]
    assert events_of(worker, resident_id)[0][2] == a.organization_id


def test_ban_and_unban_emit_once_and_a_refused_ban_none(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    user_id = resident["id"]
    me = worker.client().get("/v1/me", headers=world.admin).get_json()
    self_ban = worker.client().post(f"/v1/admin/users/{me['id']}/ban", json={}, headers=world.admin)
    assert self_ban.status_code == 409
    assert events_of(worker, me["id"]) == []
    for _ in range(2):
        assert worker.client().post(f"/v1/admin/users/{user_id}/ban", json={}, headers=world.admin).status_code == 200
    assert worker.client().post(f"/v1/admin/users/{user_id}/unban", json={}, headers=world.admin).status_code == 200
    rows = events_of(worker, user_id)
    assert [row[0] for row in rows] == ["user.banned", "user.unbanned"]
    assert rows[0][1] == {"user_id": user_id} and rows[0][2] == a.organization_id


def test_no_event_of_the_run_carries_personal_data(worker, world):
    """Names, e-mails, phones, RUTs and plates the run used appear in no event."""
    people = [world.a.people["resident"], world.b.people["resident"]]
    needles = {"Visita Secreta", "ZZ9876", "ZZ-98", "Rosa", "Emisora", "Ana", "Pérez", "Vecino", "Prueba"}
    for person in people:
        needles |= {person["email"].lower(), person["rut"], person["rut"].replace("-", ""), "12345678", "87654321"}
    rows = worker.sql("SELECT type, data::text FROM events")
    assert rows, "the run recorded events"
    for type_, data in rows:
        text = json.dumps(json.loads(data), ensure_ascii=False).lower()
        for needle in needles:
            assert needle.lower() not in text, (type_, needle)


def test_metrics_count_recorded_and_published_events(worker, world):
    def value(text, name):
        lines = [line for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{")]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    (resident,) = make_residents(worker, world.a.buildings["A1"], 1)
    before = worker.client().get("/metrics").get_data(as_text=True)
    banned = worker.client().post(f"/v1/admin/users/{resident['id']}/ban", json={}, headers=world.admin)
    assert banned.status_code == 200
    after = worker.client().get("/metrics").get_data(as_text=True)
    recorded = 'events_recorded_total{type="user.banned"}'
    assert value(after, recorded) == value(before, recorded) + 1
    assert value(after, "events_published_total") == value(before, "events_published_total") + 1
    assert "event_delivery_lag_seconds" in after and "events_delivered_total" in after
