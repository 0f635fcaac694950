"""Bookings end to end: a real gunicorn API, real Celery worker processes, Postgres and Redis."""

import concurrent.futures
import time
import uuid

import pytest
import requests

from app.unit_of_work import unit_of_work
from tests.support.waiting import wait_until_handled
from tests.support.world import make_residents, new_block, new_spot

pytestmark = pytest.mark.slow


def book(stack, headers, block_id, **extra):
    body = {"availability_block_id": block_id, "visitor_name": "Visita", "vehicle_plate": "ab-12·34", **extra}
    response = stack.client().post("/v1/bookings", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return stack.wait_job(headers, response.get_json()["job_id"])


def live_bookings(stack, block_id):
    return stack.sql("SELECT count(*) FROM bookings WHERE block_id = %s AND status <> 'cancelled'", (block_id,))[0][0]


@pytest.fixture(scope="module")
def api(worker):
    """The API process plus a second worker process: at least two consumers race for every block."""
    worker.start_worker(concurrency=2, label="second")
    return worker.start_api()


def test_fifty_concurrent_submissions_for_one_block_have_exactly_one_winner(worker, world, api):
    # A building of its own whose residents may hold many bookings: every round's winner stays eligible.
    created = worker.client().post(
        f"/v1/organizations/{world.a.organization_id}/buildings",
        json={
            "name": "Contention tower",
            "address": "Av. Siempre Viva 742",
            "contact_email": "ops@example.test",
            "max_upcoming_bookings_per_resident": 100,
        },
        headers=world.admin,
    )
    building = created.get_json()["id"]
    worker.client().post(f"/v1/buildings/{building}/units", json={"unit_number": "1"}, headers=world.admin)
    residents = make_residents(worker, building, 50)
    tokens = []
    for person in residents:
        login = requests.post(f"{api}/v1/auth/login", json={"email": person["email"], "password": person["password"]})
        tokens.append({"Authorization": f"Bearer {login.json()['access_token']}"})
    spot = new_spot(worker, world.admin, building)

    for round_ in range(10):
        block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 24 + round_ * 12 * 60)

        def submit(headers, block=block):
            with requests.Session() as session:  # a separate HTTP connection per submitter
                body = {"availability_block_id": block, "visitor_name": "Visita", "vehicle_plate": "BBCL12"}
                accepted = session.post(f"{api}/v1/bookings", json=body, headers=headers, timeout=30)
                assert accepted.status_code == 202, accepted.text
                job_url = f"{api}{accepted.json()['status_url']}?wait=30"
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    asked = time.monotonic()
                    job = session.get(job_url, headers=headers, timeout=40).json()
                    if job["status"] in ("succeeded", "failed"):
                        return job
                    if time.monotonic() - asked < 1:  # over the API's long-poll cap: answered at once
                        time.sleep(0.05)
                raise AssertionError(f"job never finished: {job}")

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            jobs = list(pool.map(submit, tokens))
        succeeded = [j for j in jobs if j["status"] == "succeeded"]
        failed = [j for j in jobs if j["status"] == "failed"]
        assert len(succeeded) == 1, f"round {round_}: {len(succeeded)} winners"
        assert len(failed) == 49
        assert {j["error"]["type"] for j in failed} == {"/problems/spot-unavailable"}
        assert succeeded[0]["result"]["booking"]["status"] == "confirmed"
        assert live_bookings(worker, block) == 1
        assert worker.sql("SELECT status FROM availability_blocks WHERE id = %s", (block,)) == [("reserved",)]


def test_a_block_whose_version_moved_loses_cleanly(worker, world):
    a = world.a
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 30)
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    # Staff take the block off sale and put it back between the resident's read and write: the
    # version moved, the block is available again, and the booking still wins on a fresh read.
    worker.client().post(f"/v1/availability-blocks/{block}/block", headers=world.admin)
    assert book(worker, headers, block)["error"]["type"] == "/problems/spot-unavailable"
    worker.client().post(f"/v1/availability-blocks/{block}/unblock", headers=world.admin)
    assert book(worker, headers, block)["status"] == "succeeded"
    assert worker.sql("SELECT version FROM availability_blocks WHERE id = %s", (block,))[0][0] == 4


def test_blocks_of_one_spot_cannot_overlap_so_two_residents_cannot_share_a_time(worker, world):
    spot = new_spot(worker, world.admin, world.a.buildings["A1"])
    new_block(worker, world.admin, spot, starts_in_minutes=60 * 40)
    overlapping = worker.client().post(
        f"/v1/spots/{spot}/blocks",
        json={
            "start": _iso(minutes=60 * 45),
            "end": _iso(minutes=60 * 50),
            "duration": "11h",
            "base_price_clp": 1,
        },
        headers=world.admin,
    )
    assert overlapping.status_code == 409


def _iso(minutes):
    from tests.support.world import soon

    return soon(minutes=minutes)


def test_the_resident_limit_of_upcoming_bookings_is_enforced(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    blocks = [new_block(worker, world.admin, spot, starts_in_minutes=60 * (60 + 12 * i)) for i in range(3)]
    assert book(worker, headers, blocks[0])["status"] == "succeeded"
    assert book(worker, headers, blocks[1])["status"] == "succeeded"
    third = book(worker, headers, blocks[2])
    assert third["error"]["type"] == "/problems/booking-limit-reached"
    assert live_bookings(worker, blocks[2]) == 0


def test_refusals_are_typed_and_change_nothing(worker, world):
    a, b = world.a, world.b
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    soon_block = new_block(worker, world.admin, spot, starts_in_minutes=5)
    # It has started: blocks cannot be created in the past, so move this one there.
    worker.sql("UPDATE availability_blocks SET start_at = now() - interval '1 minute' WHERE id = %s", (soon_block,))
    assert book(worker, headers, soon_block)["error"]["type"] == "/problems/block-in-past"
    assert book(worker, headers, b.blocks["B1"])["error"]["type"] == "/problems/not-found"
    assert book(worker, headers, str(uuid.uuid4()))["error"]["type"] == "/problems/not-found"
    far = new_block(worker, world.admin, spot, starts_in_minutes=60 * 24 * 31)
    assert book(worker, headers, far)["error"]["type"] == "/problems/spot-unavailable"
    for block in (soon_block, far):
        assert live_bookings(worker, block) == 0


def test_an_unverified_resident_cannot_book(worker, world):
    from tests.support.world import valid_rut

    a = world.a
    person = {
        "email": f"new-{uuid.uuid4().hex[:8]}@home.test",
        "password": "resident-password",
        "first_name": "Nuevo",
        "last_name": "Vecino",
        "rut": valid_rut(),
        "building_id": a.buildings["A1"],
        "unit_number": "101",
    }
    assert worker.client().post("/v1/auth/register", json=person).status_code == 201
    headers = worker.login(person)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 70)
    assert book(worker, headers, block)["error"]["type"] == "/problems/resident-not-verified"


def test_staff_cannot_book_and_bad_bodies_are_refused_before_any_job(worker, world):
    a = world.a
    assert (
        worker.client()
        .post(
            "/v1/bookings",
            json={"availability_block_id": a.blocks["A1"], "visitor_name": "x", "vehicle_plate": "AB1234"},
            headers=a.headers["concierge"],
        )
        .status_code
        == 403
    )
    jobs_before = worker.sql("SELECT count(*) FROM jobs WHERE type = 'booking.create'")[0][0]
    for body, pointer in [
        ({"visitor_name": "x", "vehicle_plate": "AB1234"}, "/availability_block_id"),
        ({"availability_block_id": a.blocks["A1"], "visitor_name": "", "vehicle_plate": "AB1234"}, "/visitor_name"),
        (
            {"availability_block_id": a.blocks["A1"], "visitor_name": "x" * 101, "vehicle_plate": "AB1234"},
            "/visitor_name",
        ),
        ({"availability_block_id": a.blocks["A1"], "visitor_name": "x", "vehicle_plate": "a-b"}, "/vehicle_plate"),
        (
            {
                "availability_block_id": a.blocks["A1"],
                "visitor_name": "x",
                "vehicle_plate": "AB1234",
                "visitor_phone": "12",
            },
            "/visitor_phone",
        ),
    ]:
        response = worker.client().post("/v1/bookings", json=body, headers=a.headers["resident"])
        assert response.status_code == 422, body
        assert response.get_json()["errors"][0]["pointer"] == pointer
    assert worker.sql("SELECT count(*) FROM jobs WHERE type = 'booking.create'")[0][0] == jobs_before


def test_a_two_times_rule_prices_the_booking_and_expected_price_is_checked(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 80)
    worker.sql(
        "INSERT INTO pricing_rules (id, building_id, name, priority, starts_at, ends_at, multiplier) "
        "SELECT gen_random_uuid(), building_id, 'concert', 100, start_at - interval '1 minute', "
        "start_at + interval '1 minute', 2.0 FROM availability_blocks WHERE id = %s",
        (block,),
    )
    changed = book(worker, headers, block, expected_price_clp=5000)
    assert changed["error"]["type"] == "/problems/price-changed"
    assert live_bookings(worker, block) == 0
    booked = book(worker, headers, block, expected_price_clp=10000)["result"]["booking"]
    assert (booked["price_clp"], booked["commission_clp"]) == (10000, 1000)


def test_cancel_then_rebook_and_cancelling_twice_answers_the_same(worker, world):
    a = world.a
    first, second = make_residents(worker, a.buildings["A1"], 2)
    h1, h2 = worker.login(first), worker.login(second)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 90)
    booking = book(worker, h1, block)["result"]["booking"]

    def cancel(headers):
        accepted = worker.client().post(f"/v1/bookings/{booking['id']}/cancel", json={}, headers=headers)
        assert accepted.status_code == 202, accepted.get_json()
        return worker.wait_job(headers, accepted.get_json()["job_id"])

    once, twice = cancel(h1), cancel(h1)
    assert once["result"] == twice["result"]
    assert once["result"]["booking"]["status"] == "cancelled"
    assert book(worker, h2, block)["status"] == "succeeded"
    assert live_bookings(worker, block) == 1
    assert (
        worker.client().post(f"/v1/bookings/{booking['id']}/cancel", json={}, headers=a.headers["resident"]).status_code
        == 404
    )


def test_redelivering_a_finished_booking_message_changes_nothing(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 100)
    job = book(worker, headers, block)
    with worker.context():
        from flask import current_app

        redelivered = current_app.extensions["celery"].send_task("booking.create", args=[job["id"]])
    wait_until_handled(worker.redis, redelivered.id)  # a worker took it and its task finished
    after = worker.client().get(f"/v1/jobs/{job['id']}", headers=headers).get_json()
    assert after == job
    assert live_bookings(worker, block) == 1
    assert worker.sql("SELECT count(*) FROM bookings WHERE block_id = %s", (block,)) == [(1,)]


def test_the_gate_check_in_window_and_a_second_check_in(worker, world):
    a = world.a
    residents = make_residents(worker, a.buildings["A1"], 2)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    early = new_block(worker, world.admin, spot, starts_in_minutes=32)
    now_block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 12)
    concierge = a.headers["concierge"]
    too_early = book(worker, worker.login(residents[0]), early)["result"]["booking"]
    denied = worker.client().post(
        f"/v1/bookings/{too_early['id']}/check-in", json={"observed_plate": "AB1234"}, headers=concierge
    )
    assert denied.status_code == 409 and denied.get_json()["type"] == "/problems/invalid-transition"
    events = worker.sql(
        "SELECT action, attempted, plate_matches FROM access_events WHERE booking_id = %s", (too_early["id"],)
    )
    assert events == [("denied", "check_in", True)]

    # A block that starts now (made by moving a fresh block to start this minute).
    current = book(worker, worker.login(residents[1]), now_block)["result"]["booking"]
    worker.sql(
        "UPDATE bookings SET block_start = now(), block_end = now() + interval '11 hours' WHERE id = %s",
        (current["id"],),
    )
    ok = worker.client().post(
        f"/v1/bookings/{current['id']}/check-in", json={"observed_plate": "XX9999"}, headers=concierge
    )
    assert ok.status_code == 200 and ok.get_json()["status"] == "checked_in"
    again = worker.client().post(f"/v1/bookings/{current['id']}/check-in", json={}, headers=concierge)
    assert again.status_code == 409
    actions = worker.sql(
        "SELECT action, plate_matches FROM access_events WHERE booking_id = %s ORDER BY occurred_at", (current["id"],)
    )
    assert actions == [("check_in", False), ("denied", None)]
    cancel = worker.client().post(f"/v1/bookings/{current['id']}/cancel", json={}, headers=world.admin)
    assert worker.wait_job(world.admin, cancel.get_json()["job_id"])["error"]["type"] == "/problems/invalid-transition"
    out = worker.client().post(f"/v1/bookings/{current['id']}/check-out", json={}, headers=concierge)
    assert out.status_code == 200 and out.get_json()["status"] == "checked_out"
    lookup = worker.client().post(
        "/v1/gate/lookup", json={"confirmation_code": too_early["confirmation_code"].lower()}, headers=concierge
    )
    assert lookup.status_code == 200 and lookup.get_json()["id"] == too_early["id"]
    elsewhere = worker.client().post(
        "/v1/gate/lookup",
        json={"confirmation_code": too_early["confirmation_code"]},
        headers=world.b.headers["concierge"],
    )
    assert elsewhere.status_code == 404


def test_no_show_and_overstay_are_marked_by_the_schedule(worker, world):
    a = world.a
    residents = make_residents(worker, a.buildings["A1"], 2)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    b1 = new_block(worker, world.admin, spot, starts_in_minutes=60 * 110)
    b2 = new_block(worker, world.admin, spot, starts_in_minutes=60 * 130)
    absent = book(worker, worker.login(residents[0]), b1)["result"]["booking"]
    stayed = book(worker, worker.login(residents[1]), b2)["result"]["booking"]
    worker.sql("UPDATE bookings SET block_start = now() - interval '31 minutes' WHERE id = %s", (absent["id"],))
    worker.sql(
        "UPDATE bookings SET status = 'checked_in', block_start = now() - interval '12 hours', "
        "block_end = now() - interval '31 minutes' WHERE id = %s",
        (stayed["id"],),
    )
    with worker.context():
        from app.services import booking_schedule

        with unit_of_work():
            counts = booking_schedule.mark_overdue()
    assert counts["no_show"] >= 1 and counts["overstay"] >= 1
    statuses = dict(
        worker.sql("SELECT id::text, status FROM bookings WHERE id IN (%s, %s)", (absent["id"], stayed["id"]))
    )
    assert statuses == {absent["id"]: "no_show", stayed["id"]: "overstay"}


def test_residents_see_their_visitors_and_staff_of_other_buildings_see_nothing(worker, world):
    a, b = world.a, world.b
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    spot = new_spot(worker, world.admin, a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 150)
    booking = book(worker, headers, block, visitor_phone="9 8765 4321")["result"]["booking"]
    for viewer in (headers, a.headers["concierge"], a.headers["building_admin"], a.headers["org_admin"]):
        seen = worker.client().get(f"/v1/bookings/{booking['id']}", headers=viewer).get_json()
        assert seen["visitor_name"] == "Visita" and seen["vehicle_plate"] == "AB1234"
        assert seen["visitor_phone"] == "+56987654321"
    for stranger in (b.headers["org_admin"], b.headers["concierge"], a.headers["resident"]):
        assert worker.client().get(f"/v1/bookings/{booking['id']}", headers=stranger).status_code == 404
        listed = worker.client().get("/v1/bookings?limit=200", headers=stranger).get_json()["items"]
        assert booking["id"] not in [x["id"] for x in listed]
    raw = worker.sql("SELECT row_to_json(bookings)::text FROM bookings WHERE id = %s", (booking["id"],))[0][0]
    assert "Visita" not in raw and "AB1234" not in raw and "987654321" not in raw
