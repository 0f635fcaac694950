"""``gdpr.export``: the caller's data, complete and nobody else's; the result is purged after 7 days."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest

from app.unit_of_work import unit_of_work
from tests.support.privacy import book, fresh_phone, fresh_plate, person_in
from tests.support.world import new_block, new_spot

pytestmark = pytest.mark.slow


def export(stack, headers):
    response = stack.client().post("/v1/me/export", headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"] == response.get_json()["status_url"]
    job = stack.wait_job(headers, response.get_json()["job_id"])
    assert job["status"] == "succeeded", job
    return job


def test_the_export_holds_all_of_the_callers_data_with_each_booking_and_nothing_of_anyone_else(worker, world):
    person = person_in(worker, world)
    headers = worker.login(person)
    spot = new_spot(worker, world.admin, world.a.buildings["A1"])
    phone, _ = fresh_phone()
    visitor = {"visitor_name": f"Invitada{uuid.uuid4().hex[:6]}", "vehicle_plate": fresh_plate()}
    visitor["visitor_phone"] = phone
    booked = book(worker, headers, new_block(worker, world.admin, spot, starts_in_minutes=60 * 30), visitor)

    job = export(worker, headers)
    data = job["result"]
    assert set(data) == {"generated_at", "user", "resident", "bookings", "sessions", "notifications", "audit_events"}
    assert data["user"]["id"] == person["id"] and data["user"]["email"] == person["email"]
    resident = data["resident"]
    assert (resident["first_name"], resident["last_name"]) == (person["first_name"], person["last_name"])
    assert resident["rut"].replace("-", "") == person["rut"].replace("-", "")
    assert resident["phone"] and resident["phone"].endswith(person["phone"].replace(" ", "")[-8:])
    assert resident["unit_number"] == "101" and resident["building_id"] == world.a.buildings["A1"]
    (exported,) = data["bookings"]
    assert exported["id"] == booked["id"]
    assert (exported["visitor_name"], exported["vehicle_plate"]) == (visitor["visitor_name"], visitor["vehicle_plate"])
    assert exported["visitor_phone"] and exported["price_clp"] == booked["price_clp"]
    assert data["sessions"] and all(s["session_id"] for s in data["sessions"])
    actions = {event["action"] for event in data["audit_events"]}
    assert {"resident.registered", "auth.login", "job.submitted"} <= actions
    # The messages sent to them (at least the login's security notice); never their visitor's.
    assert data["notifications"], data["notifications"]
    own_phone = person["phone"].replace(" ", "")[-8:]
    assert all(m["destination"].endswith(own_phone) for m in data["notifications"]), data["notifications"]
    assert "security_notice" in {m["template"] for m in data["notifications"]}

    # Nothing of anyone else: not the other residents, not the staff who verified them.
    text = json.dumps(data)
    neighbour, stranger = world.a.people["resident"], world.b.people["resident"]
    others = [neighbour["email"], neighbour["rut"], stranger["email"]]
    assert not [o for o in others if o in text]
    assert all(e["ip"] is None for e in data["audit_events"] if e["actor_id"] != person["id"])
    assert any(e["action"] == "resident.verified" and e["actor_id"] is None for e in data["audit_events"])
    admin_id = worker.client().get("/v1/me", headers=world.admin).get_json()["id"]
    assert admin_id not in text
    # Only they can read it: the job is theirs (anyone else gets the 404 of an unknown job).
    assert worker.client().get(f"/v1/jobs/{job['id']}", headers=world.a.headers["org_admin"]).status_code == 404
    # And it is encrypted at rest, like every result.
    stored = worker.sql("SELECT encode(result, 'escape') FROM jobs WHERE id = %s", (job["id"],))[0][0]
    assert person["email"] not in stored and visitor["vehicle_plate"] not in stored


def test_an_export_result_is_purged_seven_days_after_it_finished(worker, world):
    from app.services import retention

    person = person_in(worker, world)
    headers = worker.login(person)
    job = export(worker, headers)
    finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
    with worker.context():
        with unit_of_work():
            retention.scrub_personal_data(now=finished + timedelta(days=6, hours=23))
        assert worker.client().get(f"/v1/jobs/{job['id']}", headers=headers).get_json()["result"] is not None
        with unit_of_work():
            purged = retention.scrub_personal_data(now=finished + timedelta(days=7, minutes=1))
    after = worker.client().get(f"/v1/jobs/{job['id']}", headers=headers).get_json()
    assert after["status"] == "succeeded" and after["result"] is None
    assert purged["exports"] >= 1
    assert worker.sql("SELECT result IS NULL FROM jobs WHERE id = %s", (job["id"],)) == [(True,)]
