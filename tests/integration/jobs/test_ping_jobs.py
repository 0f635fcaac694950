"""The job pipeline end to end: API -> Postgres -> Redis -> real Celery worker -> Postgres -> API."""

import time
import uuid


def submit(stack, auth, **body):
    response = stack.client().post("/v1/system/ping", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response


def test_ping_job_succeeds_within_one_long_poll(worker, auth):
    accepted = submit(worker, auth, sleep_ms=200)
    document = accepted.get_json()
    assert document["status"] == "queued"
    assert accepted.headers["Location"] == f"/v1/jobs/{document['job_id']}" == document["status_url"]

    started = time.monotonic()
    job = worker.client().get(f"{document['status_url']}?wait=10", headers=auth).get_json()
    assert time.monotonic() - started < 10
    assert job["status"] == "succeeded"
    assert job["result"] == {"pong": True}
    assert job["error"] is None
    assert job["type"] == "system.ping"
    assert job["attempts"] == 1
    assert job["started_at"] and job["finished_at"] and job["created_at"].endswith("Z")


def test_failing_ping_ends_failed_with_a_problem_document(worker, auth):
    job_id = submit(worker, auth, fail=True).get_json()["job_id"]
    job = worker.wait_job(auth, job_id)
    assert job["status"] == "failed"
    assert job["result"] is None
    assert job["error"]["type"] == "/problems/job-failed"
    assert job["error"]["title"] and job["error"]["detail"] and job["error"]["status"] == 500


def test_another_users_view_of_a_job_is_not_found(worker, auth):
    job_id = submit(worker, auth).get_json()["job_id"]
    stranger = worker.login(worker.create_user())
    response = worker.client().get(f"/v1/jobs/{job_id}", headers=stranger)
    assert response.status_code == 404
    assert response.get_json()["type"] == "/problems/not-found"
    assert job_id not in [j["id"] for j in worker.client().get("/v1/jobs", headers=stranger).get_json()["items"]]


def test_platform_admin_may_read_any_job(worker, auth):
    job_id = submit(worker, auth).get_json()["job_id"]
    admin = worker.login(worker.create_user(role="platform_admin"))
    assert worker.client().get(f"/v1/jobs/{job_id}", headers=admin).status_code == 200


def test_unknown_job_is_not_found(stack, auth):
    response = stack.client().get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)
    assert response.status_code == 404


def test_job_id_that_is_not_a_uuid_is_a_validation_error(stack, auth):
    response = stack.client().get("/v1/jobs/not-a-uuid", headers=auth)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/job_id"


def test_wait_returns_the_unfinished_job_when_time_runs_out(worker, auth):
    job_id = submit(worker, auth, sleep_ms=4000).get_json()["job_id"]
    started = time.monotonic()
    job = worker.client().get(f"/v1/jobs/{job_id}?wait=1", headers=auth).get_json()
    elapsed = time.monotonic() - started
    assert job["status"] in ("queued", "running")
    assert 0.9 <= elapsed < 4


def test_wait_above_thirty_seconds_is_refused(stack, auth):
    job_id = submit(stack, auth).get_json()["job_id"]
    response = stack.client().get(f"/v1/jobs/{job_id}?wait=31", headers=auth)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/wait"


def test_sleep_beyond_five_seconds_is_refused_and_creates_no_job(stack, user, auth):
    before = stack.sql("SELECT count(*) FROM jobs WHERE owner_user_id = %s", (user["id"],))[0][0]
    response = stack.client().post("/v1/system/ping", json={"sleep_ms": 5001}, headers=auth)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/sleep_ms"
    assert stack.sql("SELECT count(*) FROM jobs WHERE owner_user_id = %s", (user["id"],))[0][0] == before


def test_unknown_body_fields_are_refused(stack, auth):
    response = stack.client().post("/v1/system/ping", json={"sleep": 5}, headers=auth)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/sleep"


def test_job_list_is_the_callers_newest_first_with_a_cursor(stack, auth):
    ids = [submit(stack, auth).get_json()["job_id"] for _ in range(3)]
    first = stack.client().get("/v1/jobs?limit=2", headers=auth).get_json()
    assert [j["id"] for j in first["items"]] == ids[::-1][:2]
    assert first["next_cursor"]
    second = stack.client().get(f"/v1/jobs?limit=2&cursor={first['next_cursor']}", headers=auth).get_json()
    assert [j["id"] for j in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


def test_job_list_filters_by_type_and_status(worker, auth):
    done = submit(worker, auth).get_json()["job_id"]
    worker.wait_job(auth, done)
    failed = submit(worker, auth, fail=True).get_json()["job_id"]
    worker.wait_job(auth, failed)
    listed = worker.client().get("/v1/jobs?status=failed&type=system.ping", headers=auth).get_json()["items"]
    assert [j["id"] for j in listed] == [failed]
    assert worker.client().get("/v1/jobs?type=booking.create", headers=auth).get_json()["items"] == []


def test_a_tampered_cursor_is_a_validation_error(stack, auth):
    response = stack.client().get("/v1/jobs?cursor=!!not-a-cursor", headers=auth)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/cursor"


def test_job_payload_and_result_are_encrypted_at_rest(worker, auth):
    job_id = submit(worker, auth, sleep_ms=12).get_json()["job_id"]
    assert worker.wait_job(auth, job_id)["status"] == "succeeded"
    payload, result = worker.sql("SELECT payload, result FROM jobs WHERE id = %s", (job_id,))[0]
    assert b"sleep_ms" not in bytes(payload)
    assert b"pong" not in bytes(result)
