"""Signed callbacks to a real local HTTP receiver (pytest-httpserver), sent by the real worker."""

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug import Response


def secret_of(stack, auth):
    response = stack.client().get("/v1/me/webhook-secret", headers=auth)
    assert response.status_code == 200
    return response.get_json()["secret"]


def submit_with_callback(stack, auth, url, **body):
    response = stack.client().post("/v1/system/ping", json={**body, "callback_url": url}, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def wait_for_requests(httpserver, count, timeout=20.0):
    deadline = time.monotonic() + timeout
    while len(httpserver.log) < count:
        assert time.monotonic() < deadline, f"only {len(httpserver.log)} of {count} callbacks arrived"
        time.sleep(0.05)


def delivery_row(stack, job_id):
    return stack.sql("SELECT status, attempts, last_status_code FROM webhook_deliveries WHERE job_id = %s", (job_id,))


def test_the_receiver_gets_the_job_document_once_signed(worker, auth, httpserver):
    secret = secret_of(worker, auth)
    assert secret.startswith("whsec_")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    job_id = submit_with_callback(worker, auth, httpserver.url_for("/hook"), sleep_ms=5)
    wait_for_requests(httpserver, 1)
    time.sleep(0.5)  # a duplicate, if any, would arrive now
    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    body = request.get_data(as_text=True)
    payload = Webhook(secret).verify(body, dict(request.headers))
    assert payload["id"] == job_id
    assert payload["status"] == "succeeded"
    assert payload["result"] == {"pong": True}
    assert request.headers["Content-Type"] == "application/json"
    assert delivery_row(worker, job_id) == [("delivered", 1, 200)]


def test_a_failed_job_is_called_back_with_its_problem(worker, auth, httpserver):
    secret = secret_of(worker, auth)
    httpserver.expect_request("/hook").respond_with_data("ok")
    job_id = submit_with_callback(worker, auth, httpserver.url_for("/hook"), fail=True)
    wait_for_requests(httpserver, 1)
    request, _ = httpserver.log[0]
    payload = Webhook(secret).verify(request.get_data(as_text=True), dict(request.headers))
    assert payload["id"] == job_id and payload["status"] == "failed"
    assert payload["error"]["type"] == "/problems/job-failed"


def test_a_receiver_answering_500_twice_gets_it_on_the_third_try(worker, auth, httpserver):
    secret = secret_of(worker, auth)
    for status in (500, 500, 200):
        httpserver.expect_ordered_request("/flaky").respond_with_response(Response("x", status=status))
    job_id = submit_with_callback(worker, auth, httpserver.url_for("/flaky"))
    wait_for_requests(httpserver, 3)
    time.sleep(0.5)
    assert len(httpserver.log) == 3
    ids = {req.headers["webhook-id"] for req, _ in httpserver.log}
    assert len(ids) == 1, "retries must carry the same webhook-id"
    last, response = httpserver.log[-1]
    assert response.status_code == 200
    assert Webhook(secret).verify(last.get_data(as_text=True), dict(last.headers))["id"] == job_id
    assert delivery_row(worker, job_id) == [("delivered", 3, 200)]


def test_a_receiver_answering_410_is_never_called_again(worker, auth, httpserver):
    httpserver.expect_request("/gone").respond_with_response(Response("", status=410))
    job_id = submit_with_callback(worker, auth, httpserver.url_for("/gone"))
    wait_for_requests(httpserver, 1)
    time.sleep(1.0)
    assert len(httpserver.log) == 1
    assert delivery_row(worker, job_id) == [("gone", 1, 410)]


def test_an_unreachable_receiver_is_retried_not_dropped(worker, auth, httpserver):
    job_id = submit_with_callback(worker, auth, "http://127.0.0.1:9/unreachable")
    deadline = time.monotonic() + 20
    while True:
        rows = delivery_row(worker, job_id)
        if rows and rows[0][1] >= 2:
            status = rows[0][0]
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status in ("pending", "failed")


def test_rotating_the_secret_signs_later_callbacks_with_the_new_one(worker, auth, httpserver):
    old = secret_of(worker, auth)
    assert secret_of(worker, auth) == old, "reading the secret must not change it"
    rotated = worker.client().post("/v1/me/webhook-secret", headers=auth).get_json()["secret"]
    assert rotated != old
    httpserver.expect_request("/hook").respond_with_data("ok")
    submit_with_callback(worker, auth, httpserver.url_for("/hook"))
    wait_for_requests(httpserver, 1)
    request, _ = httpserver.log[0]
    body, headers = request.get_data(as_text=True), dict(request.headers)
    assert json.loads(body)["status"] == "succeeded"
    Webhook(rotated).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_callback_urls_to_private_or_link_local_addresses_are_refused(stack, user, auth):
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "http://192.168.1.10/",
        "ftp://example.com/hook",
        "http://[fe80::1]/hook",
    ]:
        response = stack.client().post("/v1/system/ping", json={"callback_url": url}, headers=auth)
        assert response.status_code == 422, url
        assert response.get_json()["errors"][0]["pointer"] == "/callback_url"
    assert stack.sql("SELECT count(*) FROM jobs WHERE owner_user_id = %s", (user["id"],))[0][0] == 0


def test_callback_url_is_stored_encrypted(stack, auth, httpserver):
    job_id = submit_with_callback(stack, auth, httpserver.url_for("/secret-path-token"))
    (stored,) = stack.sql("SELECT callback_url_encrypted FROM jobs WHERE id = %s", (job_id,))[0]
    assert b"secret-path-token" not in bytes(stored)
