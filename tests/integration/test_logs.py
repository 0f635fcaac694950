"""Logs are JSON lines; one job is one trace across API and worker; no personal data leaks."""

import json
import time
import uuid


def api_lines(api_log):
    return [json.loads(line) for line in api_log.read_text().splitlines() if line.startswith("{")]


def test_a_jobs_api_and_worker_log_lines_share_its_trace_id(worker, auth, api_log):
    trace_id = f"trace-{uuid.uuid4().hex}"
    response = worker.client().post("/v1/system/ping", json={}, headers={**auth, "X-Request-ID": trace_id})
    assert response.headers["X-Request-ID"] == trace_id
    job_id = response.get_json()["job_id"]
    assert worker.wait_job(auth, job_id)["status"] == "succeeded"

    api = [line for line in api_lines(api_log) if line.get("trace_id") == trace_id]
    assert {"job submitted", "request"} <= {line["message"] for line in api}
    assert all(line["service"] == "api" for line in api)
    deadline = time.monotonic() + 5
    while True:
        mine = [line for line in worker.worker_lines() if line.get("job_id") == job_id]
        if any(line["message"] == "job finished" for line in mine):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert {line["trace_id"] for line in mine} == {trace_id}
    assert {line["service"] for line in mine} == {"worker"}


def test_a_w3c_traceparent_becomes_the_jobs_trace(worker, auth):
    trace_hex = uuid.uuid4().hex
    traceparent = f"00-{trace_hex}-00f067aa0ba902b7-01"
    response = worker.client().post("/v1/system/ping", json={}, headers={**auth, "traceparent": traceparent})
    job_id = response.get_json()["job_id"]
    worker.wait_job(auth, job_id)
    (stored,) = worker.sql("SELECT trace_id FROM jobs WHERE id = %s", (job_id,))[0]
    assert stored == trace_hex


def test_no_log_line_holds_the_users_email_password_or_token(worker, api_log):
    password = f"pw-{uuid.uuid4().hex}"
    user = worker.create_user(password=password)
    client = worker.client()
    client.post("/v1/auth/login", json={"email": user["email"], "password": "wrong-" + password})
    login = client.post("/v1/auth/login", json={"email": user["email"], "password": password}).get_json()
    token = login["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    job_id = client.post("/v1/system/ping", json={}, headers=headers).get_json()["job_id"]
    worker.wait_job(headers, job_id)
    client.get("/v1/me", headers=headers)
    client.post("/v1/auth/logout", headers=headers)

    text = api_log.read_text() + "".join(p.log_path.read_text() for p in worker.processes)
    assert job_id in text, "the scan must cover the lines of this scenario"
    for secret in (user["email"], user["email"].lower(), password, token):
        assert secret not in text
