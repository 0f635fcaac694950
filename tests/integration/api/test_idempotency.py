"""Idempotency-Key semantics of API.md on a job-creating POST."""

import threading
import time

import psycopg2


def ping(stack, auth, key, body=None):
    return stack.client().post("/v1/system/ping", json=body or {}, headers={**auth, "Idempotency-Key": key})


def jobs_of(stack, user):
    return stack.sql("SELECT count(*) FROM jobs WHERE owner_user_id = %s", (user["id"],))[0][0]


def test_same_key_and_body_twice_gives_one_job(stack, user, auth):
    first = ping(stack, auth, "key-1", {"sleep_ms": 10})
    second = ping(stack, auth, "key-1", {"sleep_ms": 10})
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert jobs_of(stack, user) == 1


def test_key_order_and_whitespace_of_the_body_do_not_matter(stack, user, auth):
    headers = {**auth, "Idempotency-Key": "key-json", "Content-Type": "application/json"}
    first = stack.client().post("/v1/system/ping", data='{"sleep_ms": 1, "fail": false}', headers=headers)
    second = stack.client().post("/v1/system/ping", data='{"fail":false,"sleep_ms":1}', headers=headers)
    assert first.get_json()["job_id"] == second.get_json()["job_id"]


def test_same_key_with_a_different_body_is_refused(stack, user, auth):
    assert ping(stack, auth, "key-2", {"sleep_ms": 10}).status_code == 202
    response = ping(stack, auth, "key-2", {"sleep_ms": 11})
    assert response.status_code == 422
    assert response.get_json()["type"] == "/problems/idempotency-key-reused"
    assert jobs_of(stack, user) == 1


def test_keys_belong_to_their_caller(stack, auth):
    other = stack.login(stack.create_user())
    mine = ping(stack, auth, "shared-key").get_json()["job_id"]
    theirs = ping(stack, other, "shared-key").get_json()["job_id"]
    assert mine != theirs


def holder_of_the_key_lock(stack):
    """The backend pid holding an idempotency advisory lock (the first request, blocked), if any."""
    rows = stack.sql(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return rows[0][0] if rows else None


def wait_for_key_lock(stack):
    deadline = time.monotonic() + 10
    while (pid := holder_of_the_key_lock(stack)) is None:
        assert time.monotonic() < deadline, "the first request never locked its key"
        time.sleep(0.05)
    return pid


def test_a_request_still_in_flight_answers_409_with_retry_after(stack, user, auth):
    """The first request locks its key, then blocks writing its audit row (we lock that table)."""
    locker = psycopg2.connect(stack.settings.database_url)
    cursor = locker.cursor()
    cursor.execute("LOCK TABLE audit_logs IN EXCLUSIVE MODE")
    first: dict = {}
    thread = threading.Thread(target=lambda: first.setdefault("response", ping(stack, auth, "key-3")))
    thread.start()
    try:
        wait_for_key_lock(stack)
        second = ping(stack, auth, "key-3")
        assert second.status_code == 409
        assert second.get_json()["type"] == "/problems/idempotency-request-in-flight"
        assert int(second.headers["Retry-After"]) >= 1
    finally:
        locker.rollback()
        locker.close()
        thread.join(timeout=30)
    assert first["response"].status_code == 202
    third = ping(stack, auth, "key-3")
    assert third.get_json()["job_id"] == first["response"].get_json()["job_id"]
    assert jobs_of(stack, user) == 1


def test_a_refused_request_does_not_burn_its_key(stack, user, auth):
    refused = ping(stack, auth, "key-4", {"callback_url": "http://10.1.2.3/hook"})
    assert refused.status_code == 422
    accepted = ping(stack, auth, "key-4", {"sleep_ms": 1})
    assert accepted.status_code == 202
    assert jobs_of(stack, user) == 1


def test_an_invalid_key_is_a_validation_error(stack, user, auth):
    for bad in ["x" * 256, "tab\there", "ñandú"]:
        response = stack.client().post("/v1/system/ping", json={}, headers={**auth, "Idempotency-Key": bad})
        assert response.status_code == 422, bad
        assert response.get_json()["errors"][0]["pointer"] == "/headers/Idempotency-Key"
    assert jobs_of(stack, user) == 0


def test_only_a_fingerprint_of_the_request_is_stored(stack, user, auth):
    ping(stack, auth, "key-5", {"sleep_ms": 4321})
    fingerprint, body = stack.sql(
        "SELECT fingerprint, response_body FROM idempotency_keys WHERE user_id = %s", (user["id"],)
    )[0]
    assert len(bytes(fingerprint)) == 32
    assert b"job_id" not in bytes(body)


def test_nothing_of_a_request_is_committed_before_its_change(stack, user, auth):
    """While the first request works, no record of its key exists outside its transaction."""
    locker = psycopg2.connect(stack.settings.database_url)
    locker.cursor().execute("LOCK TABLE audit_logs IN EXCLUSIVE MODE")
    first: dict = {}
    thread = threading.Thread(target=lambda: first.setdefault("response", ping(stack, auth, "key-6")))
    thread.start()
    try:
        wait_for_key_lock(stack)
        assert stack.sql("SELECT count(*) FROM idempotency_keys WHERE user_id = %s", (user["id"],))[0][0] == 0
    finally:
        locker.rollback()
        locker.close()
        thread.join(timeout=30)
    assert first["response"].status_code == 202
    assert stack.sql("SELECT count(*) FROM idempotency_keys WHERE user_id = %s", (user["id"],))[0][0] == 1


def test_a_request_whose_connection_dies_leaves_nothing_that_blocks_its_retry(stack, user, auth):
    """The database connection of a request holding its key is terminated mid-request (as in a
    PostgreSQL restart): it answers 503, and the retry with the same key runs at once."""
    locker = psycopg2.connect(stack.settings.database_url)
    locker.cursor().execute("LOCK TABLE audit_logs IN EXCLUSIVE MODE")
    first: dict = {}
    thread = threading.Thread(target=lambda: first.setdefault("response", ping(stack, auth, "key-7")))
    thread.start()
    try:
        pid = wait_for_key_lock(stack)
        assert stack.sql("SELECT pg_terminate_backend(%s)", (pid,))[0][0] is True
        thread.join(timeout=30)
    finally:
        locker.rollback()
        locker.close()
        thread.join(timeout=30)
    assert first["response"].status_code == 503
    assert first["response"].get_json()["type"] == "/problems/service-unavailable"
    assert stack.sql("SELECT count(*) FROM idempotency_keys WHERE user_id = %s", (user["id"],))[0][0] == 0
    assert jobs_of(stack, user) == 0
    assert holder_of_the_key_lock(stack) is None, "the lock died with its connection"

    retry = ping(stack, auth, "key-7")
    assert retry.status_code == 202, retry.get_json()
    assert "Idempotent-Replayed" not in retry.headers
    assert ping(stack, auth, "key-7").get_json()["job_id"] == retry.get_json()["job_id"]
    assert jobs_of(stack, user) == 1


def test_an_expired_key_is_forgotten_and_runs_again(stack, user, auth):
    first = ping(stack, auth, "key-8", {"sleep_ms": 1}).get_json()["job_id"]
    stack.sql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE user_id = %s", (user["id"],))
    again = ping(stack, auth, "key-8", {"sleep_ms": 2})  # a different body: no 422 once the key expired
    assert again.status_code == 202, again.get_json()
    assert again.get_json()["job_id"] != first
    assert stack.sql("SELECT count(*) FROM idempotency_keys WHERE user_id = %s", (user["id"],))[0][0] == 1


def test_the_purge_deletes_only_expired_records(stack, user, auth):
    from app.services import idempotency
    from app.unit_of_work import unit_of_work

    ping(stack, auth, "key-9")
    ping(stack, auth, "key-10")
    stack.sql(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE user_id = %s AND key = 'key-9'",
        (user["id"],),
    )
    with stack.context(), unit_of_work():
        removed = idempotency.purge_expired()
    assert removed >= 1
    keys = [row[0] for row in stack.sql("SELECT key FROM idempotency_keys WHERE user_id = %s", (user["id"],))]
    assert keys == ["key-10"]
