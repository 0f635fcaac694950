"""The audit trail is append-only in the database itself, and written with the change it records."""

import psycopg2
import pytest

from tests.integration.security.conftest import run_as


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


def test_audit_logs_cannot_be_truncated_even_by_their_owner(isolated_stack, user):
    # An isolated database: on a build without the guard this wipes the whole trail.
    isolated_stack.login(isolated_stack.create_user())
    before = isolated_stack.sql("SELECT count(*) FROM audit_logs")[0][0]
    with pytest.raises(psycopg2.Error, match="append-only"):
        isolated_stack.sql("TRUNCATE audit_logs")
    assert isolated_stack.sql("SELECT count(*) FROM audit_logs")[0][0] == before > 0


# --- the GDPR scrub: the one path that may change audit rows ---------------------------------


def trail_of(stack, user_id):
    return stack.sql(
        "SELECT id, action, entity_type, entity_id, occurred_at, trace_id, metadata, ip, user_agent, scrubbed "
        "FROM audit_logs WHERE actor_id = %s ORDER BY id",
        (user_id,),
    )


def test_the_scrub_blanks_the_personal_fields_of_a_persons_rows_and_marks_them(stack, app_role):
    scrubbed, bystander = stack.create_user(), stack.create_user()
    for person in (scrubbed, bystander):
        stack.client().post("/v1/system/ping", json={}, headers=stack.login(person))
    before, untouched = trail_of(stack, scrubbed["id"]), trail_of(stack, bystander["id"])
    assert any(row[7] for row in before), "the trail holds an address to scrub"
    assert any(row[6] for row in before), "the trail holds metadata to scrub"

    (count,) = run_as(stack, app_role, "SELECT audit_logs_scrub(%s::uuid)", (scrubbed["id"],))[0]

    after = trail_of(stack, scrubbed["id"])
    assert count == len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        assert new[:6] == old[:6], "who, what, which and when stay"
        assert new[6] == dict.fromkeys(old[6]), "metadata keeps its keys, loses its values"
        assert (new[7], new[8], new[9]) == (None, None, True)
    assert trail_of(stack, bystander["id"]) == untouched
    assert run_as(stack, app_role, "SELECT audit_logs_scrub(%s::uuid)", (scrubbed["id"],)) == [(0,)]


def test_the_scrub_reaches_rows_about_an_entity(stack, user, auth, app_role):
    job_id = stack.client().post("/v1/system/ping", json={}, headers=auth).get_json()["job_id"]
    query = "SELECT scrubbed, ip FROM audit_logs WHERE entity_type = 'job' AND entity_id = %s"
    assert stack.sql(query, (job_id,)) == [(False, "127.0.0.1")]
    assert run_as(stack, app_role, "SELECT audit_logs_scrub(NULL, 'job', ARRAY[%s])", (job_id,)) == [(1,)]
    assert stack.sql(query, (job_id,)) == [(True, None)]


@pytest.mark.parametrize(
    "assignment",
    [
        pytest.param("scrubbed = true, ip = NULL, user_agent = NULL, action = 'forged'", id="rewrites-the-action"),
        pytest.param("scrubbed = true, ip = '203.0.113.9', user_agent = NULL", id="forges-an-address"),
        pytest.param("scrubbed = true, ip = NULL, user_agent = NULL, metadata = '{\"x\": 1}'", id="forges-metadata"),
        pytest.param("ip = NULL, user_agent = NULL", id="blanks-without-marking"),
        pytest.param("scrubbed = true, ip = NULL, user_agent = NULL, occurred_at = now()", id="moves-in-time"),
    ],
)
def test_an_update_that_is_not_exactly_a_scrub_is_refused_even_for_the_owner(stack, user, assignment):
    stack.login(user)
    with pytest.raises(psycopg2.Error, match="append-only"):
        stack.sql(f"UPDATE audit_logs SET {assignment} WHERE actor_id = %s", (user["id"],))  # noqa: S608
