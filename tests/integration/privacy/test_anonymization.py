"""Anonymization end to end (issue 14): real API, Celery workers, PostgreSQL and Redis.

The upstream's own verification first: a resident books, is anonymized, cannot log in, and the
building's and the organization's stats are identical field by field. Then completeness: no
column of any table, read raw or decrypted with the keyring, and no log line holds anything of
the person or of their visitors.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.support.privacy import book, fresh_phone, fresh_plate, person_in, place_booking
from tests.support.world import make_residents, new_block, new_spot

pytestmark = pytest.mark.slow


def stats(stack, world, building_label="A1"):
    window = {
        "from": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    building = stack.client().get(
        f"/v1/buildings/{world.a.buildings[building_label]}/stats", query_string=window, headers=world.admin
    )
    organization = stack.client().get(
        f"/v1/organizations/{world.a.organization_id}/stats", query_string=window, headers=world.admin
    )
    assert building.status_code == organization.status_code == 200
    return building.get_json(), organization.get_json()


def anonymize_self(stack, world, person, headers):
    response = stack.client().post("/v1/me/anonymize", json={"password": person["password"]}, headers=headers)
    assert response.status_code == 202, response.get_json()
    job = stack.wait_job(world.admin, response.get_json()["job_id"])  # their own session ends with the job
    assert job["status"] == "succeeded", job
    return job


# --- completeness scans -------------------------------------------------------------------------


def text_columns(stack):
    """Every text, json(b) and bytea column of every table of the schema."""
    return stack.sql(
        """
        SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
        JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
        WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
          AND c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY')
        """
    )


def raw_scan(stack, needles):
    """(table.column, needle) for every value that holds a needle, read as stored (case-insensitive)."""
    found = []
    for table, column, kind in text_columns(stack):
        as_text = f"encode({column}, 'escape')" if kind == "bytea" else f"{column}::text"
        for needle in needles:
            rows = stack.sql(
                f"SELECT count(*) FROM {table} WHERE {as_text} ILIKE %s",  # noqa: S608 (names from the catalog)
                (f"%{needle}%",),
            )
            if rows[0][0]:
                found.append((f"{table}.{column}", needle))
    return found


def decrypted_scan(stack, needles):
    """The same over every encrypted column, each value decrypted with the keyring."""
    from sqlalchemy import LargeBinary, cast, select

    from app.extensions import db
    from app.security.crypto import current_crypto
    from app.services.key_rotation import encrypted_columns

    found = []
    lowered = [n.lower() for n in needles]
    with stack.context():
        keyring = current_crypto().keyring
        for target in encrypted_columns():
            raw = cast(target.column, LargeBinary())
            for (blob,) in db.session.execute(select(raw).where(target.column.is_not(None))):
                plain = keyring.decrypt(bytes(blob), target.associated_data).decode("utf-8", "replace").lower()
                found.extend((target.label, needle) for needle in lowered if needle in plain)
        db.session.rollback()
    return found


def log_scan(stack, api_log, needles):
    lines = [json.dumps(line) for line in stack.worker_lines()] + api_log.read_text().splitlines()
    return [(needle, line[:200]) for line in lines for needle in needles if needle.lower() in line.lower()]


# --- the upstream's verification, and completeness ----------------------------------------------


def test_a_resident_books_is_anonymized_cannot_log_in_and_the_stats_are_unchanged(worker, world, api_log):
    person = person_in(worker, world)
    headers = worker.login(person)
    spot = new_spot(worker, world.admin, world.a.buildings["A1"])
    block = new_block(worker, world.admin, spot, starts_in_minutes=32)
    later = new_block(worker, world.admin, spot, starts_in_minutes=60 * 24)
    visitor_phone, visitor_phone_forms = fresh_phone()
    first = {"visitor_name": f"Visitacion{uuid.uuid4().hex[:6]}", "vehicle_plate": fresh_plate()}
    second = {
        "visitor_name": f"Huesped{uuid.uuid4().hex[:6]}",
        "vehicle_plate": fresh_plate(),
        "visitor_phone": visitor_phone,
    }
    booked = [book(worker, headers, block, first), book(worker, headers, later, second)]
    # The gate saw the guest too early: a denied access event with the plate the concierge typed.
    denied = worker.client().post(
        f"/v1/bookings/{booked[0]['id']}/check-in",
        json={"observed_plate": first["vehicle_plate"]},
        headers=world.a.headers["concierge"],
    )
    assert denied.status_code == 409
    # The organization bans their RUT; the ban must keep working without showing it.
    ban = worker.client().post(
        "/v1/blocklist",
        json={
            "type": "rut",
            "value": person["rut"],
            "reason": f"{person['first_name']} was rude",
            "organization_id": world.a.organization_id,
        },
        headers=world.a.headers["org_admin"],
    )
    assert ban.status_code == 201, ban.get_json()
    worker.client().get("/v1/me/webhook-secret", headers=headers)
    before = stats(worker, world)
    # The decrypting scan sees through the encryption (the raw one would not).
    assert ("users.email_encrypted", person["email"]) in decrypted_scan(worker, [person["email"]])

    job = anonymize_self(worker, world, person, headers)
    assert job["result"] == {"anonymized": 1, "skipped": 0}

    # Login is impossible, like an unknown account; the token they held is dead.
    login = worker.client().post("/v1/auth/login", json={"email": person["email"], "password": person["password"]})
    assert login.status_code == 401 and login.get_json()["type"] == "/problems/unauthenticated"
    assert worker.client().get("/v1/me", headers=headers).status_code == 401
    assert stats(worker, world) == before
    for original in booked:
        shown = worker.client().get(f"/v1/bookings/{original['id']}", headers=world.a.headers["org_admin"]).get_json()
        assert shown["visitor_name"] == "Anonymous" and shown["vehicle_plate"] is None
        assert shown["visitor_phone"] is None
        kept = ("status", "price_clp", "commission_clp", "start", "end", "confirmation_code", "spot_number")
        assert {k: shown[k] for k in kept} == {k: original[k] for k in kept}
    user = worker.sql(
        "SELECT password_hash, mfa_secret_encrypted, webhook_secret_encrypted, anonymized_at IS NOT NULL, is_active"
        " FROM users WHERE id = %s",
        (person["id"],),
    )
    assert user == [(None, None, None, True, False)]
    entry = worker.client().get(
        f"/v1/blocklist?organization_id={world.a.organization_id}", headers=world.a.headers["org_admin"]
    )
    assert entry.status_code == 200
    # Every row they acted in is scrubbed, but the lasting record of the anonymization (ids only).
    unscrubbed = worker.sql(
        "SELECT action, ip, user_agent FROM audit_logs WHERE actor_id = %s AND NOT scrubbed", (person["id"],)
    )
    assert unscrubbed == [("user.anonymized", None, None)]
    assert worker.sql(
        "SELECT count(*) FROM audit_logs WHERE action = 'user.anonymized' AND entity_id = %s", (person["id"],)
    ) == [(1,)]
    assert worker.sql(
        "SELECT count(*) FROM events WHERE type = 'user.anonymized' AND data->>'user_id' = %s", (person["id"],)
    ) == [(1,)]

    # The scans can fail: they find what is there.
    assert raw_scan(worker, [booked[0]["confirmation_code"]])
    assert log_scan(worker, api_log, [job["id"]])
    needles = [
        *person["needles"],
        first["visitor_name"],
        first["vehicle_plate"],
        second["visitor_name"],
        second["vehicle_plate"],
        *visitor_phone_forms,
    ]
    assert raw_scan(worker, needles) == []
    assert decrypted_scan(worker, needles) == []
    assert log_scan(worker, api_log, needles) == []

    # The e-mail and the RUT may register again, as a new person.
    fields = ("email", "password", "first_name", "last_name", "rut", "building_id", "unit_number")
    again = {k: person[k] for k in fields}
    assert worker.client().post("/v1/auth/register", json=again).status_code == 201


def test_a_wrong_password_anonymizes_nothing(worker, world):
    person = person_in(worker, world)
    headers = worker.login(person)
    response = worker.client().post("/v1/me/anonymize", json={"password": "not-my-password"}, headers=headers)
    assert response.status_code == 422 and response.get_json()["errors"][0]["pointer"] == "/password"
    assert worker.sql(
        "SELECT count(*) FROM jobs WHERE owner_user_id = %s AND type = 'gdpr.anonymize'", (person["id"],)
    ) == [(0,)]
    assert worker.client().get("/v1/me", headers=headers).status_code == 200


# --- bulk -----------------------------------------------------------------------------------------


def submit_bulk(stack, headers, body):
    return stack.client().post("/v1/admin/anonymizations", json=body, headers=headers)


def test_three_by_id_are_anonymized_then_skipped(worker, world):
    people = make_residents(worker, world.a.buildings["A2"], 3)
    body = {"user_ids": [p["id"] for p in people]}
    first = submit_bulk(worker, world.a.headers["org_admin"], body)
    assert first.status_code == 202, first.get_json()
    job = worker.wait_job(world.a.headers["org_admin"], first.get_json()["job_id"])
    assert job["result"] == {"anonymized": 3, "skipped": 0}
    assert job["progress"] == {"done": 3, "total": 3}
    again = submit_bulk(worker, world.admin, body)
    assert worker.wait_job(world.admin, again.get_json()["job_id"])["result"] == {"anonymized": 0, "skipped": 3}
    for person in people:
        login = worker.client().post("/v1/auth/login", json={"email": person["email"], "password": person["password"]})
        assert login.status_code == 401
    # The building's staff still list them (bookings and stats keep them), with nothing personal left.
    listed = worker.client().get(
        f"/v1/buildings/{world.a.buildings['A2']}/residents", query_string={"limit": 200}, headers=world.admin
    )
    assert listed.status_code == 200, listed.get_json()
    shown = {r["user_id"]: r for r in listed.get_json()["items"]}
    for person in people:
        assert shown[person["id"]]["rut"] is None and shown[person["id"]]["phone"] is None
        assert shown[person["id"]]["first_name"] == "Anonymous"


def test_another_organizations_admin_gets_404_and_the_resident_is_untouched(worker, world):
    (person,) = make_residents(worker, world.a.buildings["A1"], 1)
    refused = submit_bulk(worker, world.b.headers["org_admin"], {"user_ids": [person["id"]]})
    assert refused.status_code == 404 and refused.get_json()["type"] == "/problems/not-found"
    unknown = submit_bulk(worker, world.b.headers["org_admin"], {"user_ids": [str(uuid.uuid4())]})
    assert unknown.get_json()["detail"] == refused.get_json()["detail"]  # no existence oracle
    building_admin = submit_bulk(worker, world.a.headers["building_admin"], {"user_ids": [person["id"]]})
    assert building_admin.status_code == 403 and building_admin.get_json()["type"] == "/problems/forbidden"
    resident = submit_bulk(worker, world.a.headers["resident"], {"user_ids": [person["id"]]})
    assert resident.status_code == 403
    # A's own staff are not A's admin's to erase (a staff account is the platform's).
    concierge = submit_bulk(worker, world.a.headers["org_admin"], {"user_ids": [world.a.people["concierge"]["id"]]})
    assert concierge.status_code == 404
    assert worker.sql(
        "SELECT count(*) FROM jobs WHERE type = 'gdpr.anonymize' AND owner_user_id = %s",
        (world.b.people["org_admin"]["id"],),
    ) == [(0,)]
    assert (
        worker.client()
        .post("/v1/auth/login", json={"email": person["email"], "password": person["password"]})
        .status_code
        == 200
    )


def test_the_body_takes_exactly_one_of_user_ids_or_inactive_since(worker, world):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    bodies = (
        {},
        {"user_ids": [], "inactive_since": "2026-01-01"},
        {"inactive_since": 1700000000},
        {"user_ids": None},
        {"inactive_since": tomorrow},  # "no login since" a date to come would be everyone
    )
    for body in bodies:
        response = submit_bulk(worker, world.admin, body)
        assert response.status_code == 422, (body, response.get_json())


def test_inactive_since_picks_exactly_the_inactive_residents(worker, world):
    from tests.support.world import build_tenant

    tenant = build_tenant(worker, world.admin, f"Org Idle {uuid.uuid4().hex[:6]}", ["I1"])
    idle, active, booked = make_residents(worker, tenant.buildings["I1"], 3)
    ids = [idle["id"], active["id"], booked["id"]]
    worker.sql("UPDATE users SET created_at = now() - interval '400 days' WHERE id = ANY(%s::uuid[])", (ids,))
    worker.login(active)  # a login since the date: active
    place_booking(worker, tenant.blocks["I1"], booked)  # a booking to come: active, though they never logged in
    cutoff = date.today().isoformat()
    response = submit_bulk(worker, tenant.headers["org_admin"], {"inactive_since": cutoff})
    assert response.status_code == 202, response.get_json()
    job = worker.wait_job(tenant.headers["org_admin"], response.get_json()["job_id"])
    assert job["result"] == {"anonymized": 1, "skipped": 0}, job
    anonymized = worker.sql(
        "SELECT u.id::text FROM users u JOIN residents r ON r.user_id = u.id JOIN buildings b ON b.id = r.building_id"
        " WHERE b.organization_id = %s AND u.anonymized_at IS NOT NULL",
        (tenant.organization_id,),
    )
    assert anonymized == [(idle["id"],)]
    # Outside the org_admin's organization nothing was touched, whoever was idle there.
    assert worker.sql("SELECT count(*) FROM users WHERE anonymized_by_job = %s", (job["id"],)) == [(1,)]
