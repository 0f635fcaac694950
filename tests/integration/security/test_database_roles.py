"""The application runs as a least-privileged database role: no DDL, no TRUNCATE, no rewriting
the audit trail. Migrations run as the owner; the API and workers as a member of ``estacionate_app``.
"""

from __future__ import annotations

import time

import psycopg2
import pytest
import requests

from tests.conftest import BASE_DATABASE_URL
from tests.integration.security.conftest import as_role, run_as
from tests.support.stack import admin_connection
from tests.support.world import build_tenant

REFUSED = [
    pytest.param("TRUNCATE audit_logs", id="truncate-audit"),
    pytest.param("TRUNCATE jobs", id="truncate-jobs"),
    pytest.param("UPDATE audit_logs SET action = 'forged'", id="update-audit"),
    pytest.param("UPDATE audit_logs SET scrubbed = true, ip = NULL, user_agent = NULL", id="scrub-by-hand"),
    pytest.param("DELETE FROM audit_logs", id="delete-audit"),
    pytest.param("DROP TABLE bookings", id="drop-table"),
    pytest.param("ALTER TABLE jobs ADD COLUMN intruder int", id="alter-table"),
    pytest.param("CREATE TABLE intruder (id int)", id="create-table"),
    pytest.param("CREATE INDEX intruder ON jobs (trace_id)", id="create-index"),
    pytest.param("DROP TRIGGER audit_logs_append_only ON audit_logs", id="drop-trigger"),
    pytest.param("ALTER TABLE audit_logs DISABLE TRIGGER ALL", id="disable-triggers"),
    pytest.param("CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'", id="create-function"),
    pytest.param("UPDATE alembic_version SET version_num = '0000'", id="rewrite-migration-state"),
    pytest.param("CREATE ROLE intruder LOGIN SUPERUSER", id="create-role"),
]


@pytest.mark.parametrize("statement", REFUSED)
def test_the_app_role_may_not(stack, app_role, statement):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run_as(stack, app_role, statement)


def test_the_app_role_may_read_and_append_to_the_trail(stack, app_role):
    insert = "INSERT INTO audit_logs (actor_type, action, metadata) VALUES ('system', 'probe', '{}') RETURNING id"
    (row_id,) = run_as(stack, app_role, insert)[0]
    assert run_as(stack, app_role, "SELECT action FROM audit_logs WHERE id = %s", (row_id,)) == [("probe",)]


def test_tables_created_by_later_migrations_are_granted_to_the_app_role(isolated_stack, app_role):
    # What a future migration run by the owner does; an isolated database keeps the schema of the others.
    isolated_stack.sql("CREATE TABLE later_table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x int)")
    run_as(isolated_stack, app_role, "INSERT INTO later_table (x) VALUES (1)")
    run_as(isolated_stack, app_role, "UPDATE later_table SET x = 2")
    assert run_as(isolated_stack, app_role, "SELECT x FROM later_table") == [(2,)]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run_as(isolated_stack, app_role, "TRUNCATE later_table")


def test_a_stack_running_as_the_app_role_serves_a_booking_end_to_end(isolated_stack_factory, app_role):
    stack = isolated_stack_factory()
    # Migrated as the owner (the template); from here on every process connects as the app role.
    stack.env["DATABASE_URL"] = as_role(stack.env["DATABASE_URL"], app_role)
    database = stack.env["DATABASE_URL"].rsplit("/", 1)[1]
    stack.start_worker()
    api = stack.start_api()
    admin = stack.login(stack.create_user(role="platform_admin"))
    tenant = build_tenant(stack, admin, "Org roles", ["R1"])
    resident = tenant.headers["resident"]

    body = {"availability_block_id": tenant.blocks["R1"], "visitor_name": "Visita", "vehicle_plate": "AB1234"}
    accepted = requests.post(f"{api}/v1/bookings", json=body, headers=resident, timeout=30)
    assert accepted.status_code == 202, accepted.text
    job_url = f"{api}{accepted.json()['status_url']}"
    deadline = time.monotonic() + 30
    while (job := requests.get(f"{job_url}?wait=5", headers=resident, timeout=30).json())["status"] not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, job
    assert job["status"] == "succeeded", job
    booking = job["result"]["booking"]
    read = requests.get(f"{api}/v1/bookings/{booking['id']}", headers=tenant.headers["concierge"], timeout=30)
    assert read.status_code == 200 and read.json()["status"] == "confirmed"
    lookup = requests.post(
        f"{api}/v1/gate/lookup",
        json={"confirmation_code": booking["confirmation_code"]},
        headers=tenant.headers["concierge"],
        timeout=30,
    )
    assert lookup.status_code == 200, lookup.text

    conn = admin_connection(BASE_DATABASE_URL)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            (database,),
        )
        users = {name for (name,) in cur.fetchall()}
    conn.close()
    assert users == {app_role}, "the API and the worker must connect as the app role only"
    audited = run_as(stack, app_role, "SELECT count(*) FROM audit_logs WHERE entity_id = %s", (booking["id"],))
    assert audited[0][0] >= 1
