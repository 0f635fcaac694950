"""Signed callbacks to a real local HTTP receiver (pytest-httpserver), sent by the real worker.

Misbehaving receivers are real local servers too: one that trickles its answer a byte at a time
(tests/support/receivers.py), one serving TLS with a certificate from a test CA (trustme).
"""

import json
import ssl
import uuid

import pytest
import trustme
from pytest_httpserver import HTTPServer
from sqlalchemy import func
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug import Response

from app.jobs.webhooks import RETRY_SCHEDULE
from tests.support.receivers import TrickleReceiver
from tests.support.waiting import wait_until

#: Every delivery gets this many attempts: the first one plus one per retry delay.
ATTEMPT_CAP = len(RETRY_SCHEDULE) + 1


def secret_of(stack, auth):
    response = stack.client().get("/v1/me/webhook-secret", headers=auth)
    assert response.status_code == 200
    return response.get_json()["secret"]


def submit_with_callback(stack, auth, url, **body):
    response = stack.client().post("/v1/system/ping", json={**body, "callback_url": url}, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def wait_for_requests(httpserver, count, timeout=20.0):
    wait_until(
        lambda: len(httpserver.log) >= count,
        timeout,
        message=lambda: f"only {len(httpserver.log)} of {count} callbacks arrived",
    )


def unique_path() -> str:
    """A path of the test's own: late retries of other tests' callbacks reach the same server."""
    return f"/hook-{uuid.uuid4().hex[:12]}"


def requests_to(server, path):
    return [request for request, _ in server.log if request.path == path]


def wait_for_requests_to(server, path, count, timeout=20.0):
    return wait_until(
        lambda: (found := requests_to(server, path)) and len(found) >= count and found,
        timeout,
        message=lambda: f"only {len(requests_to(server, path))} of {count} callbacks to {path} arrived",
    )


def a_later_callback_arrived(stack, auth, server):
    """The positive marker that the moment for a duplicate or a retry has passed.

    A callback submitted now was delivered by the same worker, after the one before it was
    settled (its delivery row is terminal first), so a repeat of that one would have come already.
    """
    path = unique_path()
    server.expect_request(path).respond_with_data("ok")
    submit_with_callback(stack, auth, server.url_for(path))
    wait_for_requests_to(server, path, 1)


def wait_for_delivery(stack, job_id, expected):
    return wait_until(lambda: delivery_row(stack, job_id) == [expected], message=f"delivery never became {expected}")


def delivery_row(stack, job_id):
    return stack.sql("SELECT status, attempts, last_status_code FROM webhook_deliveries WHERE job_id = %s", (job_id,))


def test_the_receiver_gets_the_job_document_once_signed(worker, auth, httpserver):
    secret = secret_of(worker, auth)
    assert secret.startswith("whsec_")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    job_id = submit_with_callback(worker, auth, httpserver.url_for("/hook"), sleep_ms=5)
    wait_for_requests(httpserver, 1)
    wait_for_delivery(worker, job_id, ("delivered", 1, 200))
    a_later_callback_arrived(worker, auth, httpserver)
    assert len(requests_to(httpserver, "/hook")) == 1, "the callback was delivered more than once"
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
    wait_for_delivery(worker, job_id, ("delivered", 3, 200))
    a_later_callback_arrived(worker, auth, httpserver)
    flaky = [(req, res) for req, res in httpserver.log if req.path == "/flaky"]
    assert len(flaky) == 3
    ids = {req.headers["webhook-id"] for req, _ in flaky}
    assert len(ids) == 1, "retries must carry the same webhook-id"
    last, response = flaky[-1]
    assert response.status_code == 200
    assert Webhook(secret).verify(last.get_data(as_text=True), dict(last.headers))["id"] == job_id
    assert delivery_row(worker, job_id) == [("delivered", 3, 200)]


def test_a_receiver_answering_410_is_never_called_again(worker, auth, httpserver):
    httpserver.expect_request("/gone").respond_with_response(Response("", status=410))
    job_id = submit_with_callback(worker, auth, httpserver.url_for("/gone"))
    wait_for_requests(httpserver, 1)
    wait_for_delivery(worker, job_id, ("gone", 1, 410))  # terminal: nothing is scheduled again
    a_later_callback_arrived(worker, auth, httpserver)
    assert len(requests_to(httpserver, "/gone")) == 1


def test_an_unreachable_receiver_is_retried_not_dropped(worker, auth, httpserver):
    job_id = submit_with_callback(worker, auth, "http://127.0.0.1:9/unreachable")
    rows = wait_until(lambda: (rows := delivery_row(worker, job_id)) and rows[0][1] >= 2 and rows)
    assert rows[0][0] in ("pending", "failed")


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


def test_callbacks_go_to_the_named_host_with_its_host_header(worker, auth, httpserver):
    path = unique_path()
    httpserver.expect_request(path).respond_with_data("ok")
    job_id = submit_with_callback(worker, auth, f"http://localhost:{httpserver.port}{path}")
    (request,) = wait_for_requests_to(httpserver, path, 1)
    assert request.headers["Host"] == f"localhost:{httpserver.port}"
    assert json.loads(request.get_data())["id"] == job_id


# --- slow receivers, crashes and the attempt cap ----------------------------------------------


def wait_for_row(stack, job_id, done, timeout=60.0):
    def row():
        rows = stack.sql(
            "SELECT status, attempts, last_status_code, last_error FROM webhook_deliveries WHERE job_id = %s", (job_id,)
        )
        return rows[0] if rows and done(rows[0]) else None

    return wait_until(row, timeout, interval=0.1, message=f"delivery of {job_id} never finished")


DEADLINE = 1.0
MARGIN = 1.5  # a loaded 2-core machine: the worker's own bookkeeping between attempts


def test_a_trickling_receiver_costs_one_deadline_per_attempt_and_the_cap_holds(isolated_stack_factory):
    stack = isolated_stack_factory(WEBHOOK_DEADLINE_SECONDS=str(DEADLINE), WEBHOOK_RETRY_SCALE="0.00001")
    stack.start_worker()
    auth = stack.login(stack.create_user())
    with TrickleReceiver(interval=0.2) as slow:
        job_id = submit_with_callback(stack, auth, slow.url())
        (first,) = slow.wait_for(1, closed=True, timeout=DEADLINE + 10)
        assert first.held_for < DEADLINE + MARGIN, f"the first attempt held the worker {first.held_for:.1f}s"
        status, attempts, code, error = wait_for_row(stack, job_id, lambda row: row[0] != "pending", timeout=90)
        assert (status, attempts, code) == ("failed", ATTEMPT_CAP, None)
        assert error == "deadline exceeded"
        connections = slow.wait_for(ATTEMPT_CAP, closed=True, timeout=5)
        assert len(slow.connections) == ATTEMPT_CAP, "no attempt beyond the cap"
        assert max(c.held_for for c in connections) < DEADLINE + MARGIN


def add_delivery(stack, auth, url, *, attempts):
    """A finished job and a due delivery row for it, written through the models (no message sent)."""
    from app.extensions import db
    from app.models import WebhookDelivery

    job_id = stack.client().post("/v1/system/ping", json={}, headers=auth).get_json()["job_id"]
    with stack.context():
        owner = stack.sql("SELECT owner_user_id FROM jobs WHERE id = %s", (job_id,))[0][0]
        delivery = WebhookDelivery(
            job_id=uuid.UUID(job_id), user_id=owner, url=url, attempts=attempts, next_attempt_at=func.now()
        )
        db.session.add(delivery)
        db.session.commit()
        return job_id, str(delivery.id)


def publish_delivery(stack, delivery_id):
    from app.jobs.broker import publish

    with stack.context():
        publish("webhooks.deliver", [delivery_id])


def test_a_delivery_that_used_every_attempt_is_failed_by_the_claim_and_never_sent(worker, auth, httpserver):
    # The state a crashed attempt used to leave behind: still pending, attempts at the cap.
    path = unique_path()
    httpserver.expect_request(path).respond_with_data("ok")
    job_id, delivery_id = add_delivery(worker, auth, httpserver.url_for(path), attempts=ATTEMPT_CAP)
    publish_delivery(worker, delivery_id)
    status, attempts, _, error = wait_for_row(worker, job_id, lambda row: row[0] != "pending", timeout=20)
    assert (status, attempts) == ("failed", ATTEMPT_CAP)
    assert error == "attempts exhausted"
    assert requests_to(httpserver, path) == []


def test_an_attempt_that_crashes_is_counted_and_retried_until_the_cap(isolated_stack_factory, httpserver):
    # A URL that no longer decrypts (say, its key left the keyring) makes every attempt raise.
    stack = isolated_stack_factory(WEBHOOK_RETRY_SCALE="0.00001")
    stack.start_worker()
    auth = stack.login(stack.create_user())
    path = unique_path()
    httpserver.expect_request(path).respond_with_data("ok")
    job_id, delivery_id = add_delivery(stack, auth, httpserver.url_for(path), attempts=0)
    stack.sql(
        "UPDATE webhook_deliveries SET url_encrypted = (SELECT payload FROM jobs WHERE id = %s) WHERE id = %s",
        (job_id, delivery_id),
    )
    publish_delivery(stack, delivery_id)
    status, attempts, code, error = wait_for_row(stack, job_id, lambda row: row[0] != "pending", timeout=60)
    assert (status, attempts, code) == ("failed", ATTEMPT_CAP, None)
    assert error.startswith("internal error")
    assert requests_to(httpserver, path) == []


def test_concurrent_first_deliveries_all_sign_with_the_one_secret(isolated_stack_factory, httpserver):
    # Nobody has asked for a secret yet: the first deliveries create it, several at once.
    stack = isolated_stack_factory()
    stack.start_worker(concurrency=4)
    path = unique_path()
    httpserver.expect_request(path).respond_with_data("ok")
    owners: dict[str, tuple[str, dict[str, str]]] = {}
    rounds, per_user = 6, 4
    for _ in range(rounds):
        user = stack.create_user()
        auth = stack.login(user)
        for _ in range(per_user):
            owners[submit_with_callback(stack, auth, httpserver.url_for(path))] = (user["id"], auth)
    callbacks = wait_for_requests_to(httpserver, path, rounds * per_user, timeout=60)
    secrets_by_user = {user_id: secret_of(stack, auth) for user_id, auth in owners.values()}
    unverifiable = []
    for request in callbacks:
        body = request.get_data(as_text=True)
        user_id, _ = owners[json.loads(body)["id"]]
        try:
            Webhook(secrets_by_user[user_id]).verify(body, dict(request.headers))
        except WebhookVerificationError:
            unverifiable.append(json.loads(body)["id"])
    assert unverifiable == [], f"{len(unverifiable)} callbacks were signed with a secret that no longer exists"


# --- TLS ------------------------------------------------------------------------------------


def test_https_callbacks_verify_the_receivers_certificate_against_the_host_name(isolated_stack_factory, tmp_path):
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    sni: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: sni.append(name)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        server.expect_request("/hook").respond_with_data("ok")
        stack = isolated_stack_factory(OUTBOUND_CA_BUNDLE=str(tmp_path / "ca.pem"))
        stack.start_worker()
        auth = stack.login(stack.create_user())
        secret = secret_of(stack, auth)
        named = submit_with_callback(stack, auth, f"https://localhost:{server.port}/hook")
        wait_for_requests(server, 1)
        request, _ = server.log[0]
        assert Webhook(secret).verify(request.get_data(as_text=True), dict(request.headers))["id"] == named
        assert sni == ["localhost"]
        assert wait_for_row(stack, named, lambda row: row[0] == "delivered")[1] == 1
        # The same receiver by its IP address: the certificate does not name 127.0.0.1.
        by_ip = submit_with_callback(stack, auth, f"https://127.0.0.1:{server.port}/hook")
        status, _, code, error = wait_for_row(stack, by_ip, lambda row: row[1] >= 1 and row[3] is not None)
        assert (status, code) == ("pending", None)
        assert "certificate" in error
        assert len(server.log) == 1
    finally:
        server.stop()


def test_production_accepts_only_https_callback_urls(isolated_stack_factory):
    stack = isolated_stack_factory(**production_keys(), APP_ENV="production", ALLOW_LOOPBACK_CALLBACKS="")
    assert stack.settings.is_production
    user = stack.create_user()
    auth = stack.login(user)
    response = stack.client().post("/v1/system/ping", json={"callback_url": "http://93.184.216.34/hook"}, headers=auth)
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"pointer": "/callback_url", "detail": "must be an https URL"}]
    assert stack.sql("SELECT count(*) FROM jobs WHERE owner_user_id = %s", (user["id"],))[0][0] == 0


def production_keys() -> dict[str, str]:
    """Fresh keys production accepts (no development marker)."""
    import base64
    import secrets

    from tests.support.fake_twilio import production_twilio_env

    return {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        **production_twilio_env(),
    }
