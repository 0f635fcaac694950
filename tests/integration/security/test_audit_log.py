"""The audit trail is append-only in the database itself, and written with the change it records."""

import psycopg2
import pytest


def test_audit_rows_cannot_be_updated(stack, user):
    stack.login(user)
    with pytest.raises(psycopg2.Error, match="append-only"):
        stack.sql("UPDATE audit_logs SET action = 'forged' WHERE actor_id = %s", (user["id"],))


def test_audit_rows_cannot_be_deleted(stack, user):
    stack.login(user)
    with pytest.raises(psycopg2.Error, match="append-only"):
        stack.sql("DELETE FROM audit_logs WHERE actor_id = %s", (user["id"],))
    assert stack.sql("SELECT count(*) FROM audit_logs WHERE actor_id = %s", (user["id"],))[0][0] >= 1


def test_submitting_a_job_is_audited_with_its_id(stack, user, auth):
    job_id = stack.client().post("/v1/system/ping", json={}, headers=auth).get_json()["job_id"]
    rows = stack.sql(
        "SELECT actor_id::text, actor_type, metadata->>'type', trace_id FROM audit_logs "
        "WHERE action = 'job.submitted' AND entity_type = 'job' AND entity_id = %s",
        (job_id,),
    )
    assert len(rows) == 1
    actor_id, actor_type, job_type, trace_id = rows[0]
    assert (actor_id, actor_type, job_type) == (user["id"], "human", "system.ping")
    assert trace_id


def test_logout_is_audited(stack, user, auth):
    stack.client().post("/v1/auth/logout", headers=auth)
    assert stack.sql("SELECT 1 FROM audit_logs WHERE action = 'auth.logout' AND actor_id = %s", (user["id"],))
