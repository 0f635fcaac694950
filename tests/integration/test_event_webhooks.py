"""Operator webhooks against a real local receiver (pytest-httpserver), sent by the real worker.

Issue 12's "Operator webhooks" acceptance: a booking delivers ``booking.confirmed`` verified with
``standardwebhooks`` and its cancellation ``booking.cancelled``; organization B's endpoint gets
nothing of A's; 500, 500, 200 is the same ``webhook-id`` three times; 410 stops the retries of that
event; 24 h of failures disables the endpoint (the webhook clock shrunk by ``WEBHOOK_RETRY_SCALE``);
the catch-up API lists the events in order; payloads hold no personal data. Each test removes the
endpoints it made, so the shared world's later events are not sent to a receiver that is gone.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Response

from app.events import record
from app.extensions import db
from app.jobs import event_webhooks
from app.jobs.webhooks import new_secret
from app.models import Event, Organization, WebhookEndpoint
from app.unit_of_work import unit_of_work
from tests.support.waiting import wait_until
from tests.support.world import new_block, new_spot, valid_rut

pytestmark = pytest.mark.slow


def unique_path() -> str:
    return f"/org-hook-{uuid.uuid4().hex[:12]}"


def requests_to(server: HTTPServer, path: str) -> list:
    return [request for request, _ in server.log if request.path == path]


def wait_for_requests_to(server: HTTPServer, path: str, count: int, timeout: float = 30.0) -> list:
    return wait_until(
        lambda: (found := requests_to(server, path)) and len(found) >= count and found,
        timeout,
        message=lambda: f"only {len(requests_to(server, path))} of {count} webhooks to {path} arrived",
    )


@contextlib.contextmanager
def endpoint(stack, headers, organization_id, url, event_types=("*",)):
    """An endpoint registered through the API (201, secret shown once), deleted afterwards (204)."""
    response = stack.client().post(
        f"/v1/organizations/{organization_id}/webhook-endpoints",
        json={"url": url, "event_types": list(event_types), "description": "acceptance"},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["secret"].startswith("whsec_") and created["status"] == "enabled"
    try:
        yield created
    finally:
        deleted = stack.client().delete(f"/v1/webhook-endpoints/{created['id']}", headers=headers)
        assert deleted.status_code == 204


def register_resident(stack, building_id):
    """A ``resident.registered`` event of the building's organization (the cheapest event there is)."""
    form = {
        "email": f"hook-{uuid.uuid4().hex[:10]}@home.test",
        "password": "resident-password",
        "first_name": "Renata",
        "last_name": "Quiroga",
        "rut": valid_rut(),
        "building_id": building_id,
        "unit_number": "101",
    }
    response = stack.client().post("/v1/auth/register", json=form)
    assert response.status_code == 201, response.get_json()
    (event_id,) = stack.sql(
        "SELECT id::text FROM events WHERE type = 'resident.registered' AND aggregate_id = %s",
        (response.get_json()["id"],),
    )[0]
    return event_id, form


def deliveries_of(stack, endpoint_id):
    return stack.sql(
        "SELECT event_id::text, status, attempts, last_status_code FROM webhook_endpoint_deliveries "
        "WHERE endpoint_id = %s ORDER BY created_at",
        (endpoint_id,),
    )


def book(stack, headers, block_id, plate):
    body = {"availability_block_id": block_id, "visitor_name": "Visita Confidencial", "vehicle_plate": plate}
    response = stack.client().post("/v1/bookings", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    job = stack.wait_job(headers, response.get_json()["job_id"])
    assert job["status"] == "succeeded", job
    return job["result"]["booking"]


def test_a_booking_and_its_cancellation_reach_the_operator_signed_and_nothing_reaches_another_org(
    worker, world, httpserver
):
    a, b = world.a, world.b
    mine, theirs = unique_path(), unique_path()
    httpserver.expect_request(mine, method="POST").respond_with_data("ok")
    httpserver.expect_request(theirs, method="POST").respond_with_data("ok")
    with (
        endpoint(
            worker,
            a.headers["org_admin"],
            a.organization_id,
            httpserver.url_for(mine),
            ["booking.confirmed", "booking.cancelled"],
        ) as hook,
        endpoint(worker, b.headers["org_admin"], b.organization_id, httpserver.url_for(theirs)),
    ):
        spot = new_spot(worker, world.admin, a.buildings["A1"])
        block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 300)
        booking = book(worker, a.headers["resident"], block, "ZQ-12·34")
        wait_for_requests_to(httpserver, mine, 1)
        cancelled = worker.client().post(f"/v1/bookings/{booking['id']}/cancel", json={}, headers=a.headers["resident"])
        assert cancelled.status_code == 202
        assert worker.wait_job(a.headers["resident"], cancelled.get_json()["job_id"])["status"] == "succeeded"
        first, second = wait_for_requests_to(httpserver, mine, 2)

        events = dict(
            worker.sql("SELECT type, id::text FROM events WHERE aggregate_id = %s ORDER BY seq", (booking["id"],))
        )
        for request, type_ in ((first, "booking.confirmed"), (second, "booking.cancelled")):
            payload = Webhook(hook["secret"]).verify(request.get_data(as_text=True), dict(request.headers))
            assert payload["type"] == type_
            assert request.headers["webhook-id"] == payload["id"] == events[type_]
            assert payload["organization_id"] == a.organization_id
            assert payload["building_id"] == a.buildings["A1"]
            assert payload["data"]["booking_id"] == booking["id"]
            assert set(payload) == {"id", "type", "occurred_at", "organization_id", "building_id", "data"}
        assert [row[1:] for row in deliveries_of(worker, hook["id"])] == [("delivered", 1, 200)] * 2

        # B's endpoint ("*") is sent B's events only: A's booking was settled above, and an event of
        # B's delivered after it is the marker that nothing of A's is still on its way there.
        marker, _ = register_resident(worker, b.buildings["B1"])
        wait_until(
            lambda: any(r.headers["webhook-id"] == marker for r in requests_to(httpserver, theirs)),
            30,
            message="B's own event never reached B's endpoint",
        )
        for request in requests_to(httpserver, theirs):
            assert json.loads(request.get_data())["organization_id"] == b.organization_id
        assert not worker.sql(
            "SELECT 1 FROM webhook_endpoint_deliveries d JOIN events e ON e.id = d.event_id "
            "JOIN webhook_endpoints w ON w.id = d.endpoint_id "
            "WHERE w.organization_id <> e.organization_id"
        )


def test_a_receiver_answering_500_twice_gets_the_same_webhook_id_three_times(worker, world, httpserver):
    a = world.a
    path = unique_path()
    for status in (500, 500, 200):
        httpserver.expect_ordered_request(path).respond_with_response(Response("x", status=status))
    with endpoint(worker, a.headers["org_admin"], a.organization_id, httpserver.url_for(path)) as hook:
        event_id, _ = register_resident(worker, a.buildings["A1"])
        tries = wait_for_requests_to(httpserver, path, 3)
        wait_until(
            lambda: deliveries_of(worker, hook["id"]) == [(event_id, "delivered", 3, 200)],
            30,
            message=lambda: f"delivery never settled: {deliveries_of(worker, hook['id'])}",
        )
        assert [r.headers["webhook-id"] for r in tries] == [event_id] * 3
        for request in tries:
            Webhook(hook["secret"]).verify(request.get_data(as_text=True), dict(request.headers))
        assert worker.sql("SELECT status, failing_since FROM webhook_endpoints WHERE id = %s", (hook["id"],)) == [
            ("enabled", None)
        ]


def test_410_stops_the_retries_of_that_event_and_the_endpoint_stays_enabled(worker, world, httpserver):
    a = world.a
    path = unique_path()
    httpserver.expect_request(path).respond_with_response(Response("", status=410))
    with endpoint(worker, a.headers["org_admin"], a.organization_id, httpserver.url_for(path)) as hook:
        gone, _ = register_resident(worker, a.buildings["A1"])
        wait_until(lambda: deliveries_of(worker, hook["id"]) == [(gone, "gone", 1, 410)], 30, message="never gone")
        # the positive marker: a later event reached the same endpoint, so a retry of the first would have too
        later, _ = register_resident(worker, a.buildings["A1"])
        wait_until(
            lambda: any(r.headers["webhook-id"] == later for r in requests_to(httpserver, path)),
            30,
            message="the later event never arrived",
        )
        ids = [r.headers["webhook-id"] for r in requests_to(httpserver, path)]
        assert ids.count(gone) == 1, ids
        assert worker.sql("SELECT status FROM webhook_endpoints WHERE id = %s", (hook["id"],)) == [("enabled",)]


def test_the_catch_up_api_lists_the_organizations_events_in_order_after_an_event(worker, world):
    a, b = world.a, world.b
    first, _ = register_resident(worker, a.buildings["A1"])
    made = [register_resident(worker, a.buildings["A1"])[0] for _ in range(3)]
    register_resident(worker, b.buildings["B1"])  # another organization's: never listed for A
    url = f"/v1/organizations/{a.organization_id}/events?after={first}&type=resident.registered&limit=2"
    seen: list[str] = []
    while url:
        response = worker.client().get(url, headers=a.headers["org_admin"])
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert len(page["items"]) <= 2
        for item in page["items"]:
            assert item["organization_id"] == a.organization_id and item["type"] == "resident.registered"
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        url = (
            f"/v1/organizations/{a.organization_id}/events?after={first}&type=resident.registered&limit=2&cursor={cursor}"
            if cursor
            else None
        )
    assert seen[:3] == made  # oldest first; nothing before ``after``; later tests may add more
    assert first not in seen
    refused = worker.client().get(
        f"/v1/organizations/{a.organization_id}/events?after={uuid.uuid4()}", headers=a.headers["org_admin"]
    )
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["pointer"] == "/after"


def test_payloads_hold_no_personal_data(worker, world, httpserver):
    a = world.a
    path = unique_path()
    httpserver.expect_request(path).respond_with_data("ok")
    with endpoint(worker, a.headers["org_admin"], a.organization_id, httpserver.url_for(path)):
        event_id, person = register_resident(worker, a.buildings["A1"])
        (request,) = wait_until(
            lambda: [r for r in requests_to(httpserver, path) if r.headers["webhook-id"] == event_id],
            30,
            message="the registration's webhook never arrived",
        )
        body = request.get_data(as_text=True).lower()
        for secret in (person["email"], person["first_name"], person["last_name"], person["rut"]):
            assert secret.lower() not in body, secret
        assert set(json.loads(body)["data"]) == {"resident_id", "user_id", "unit_id", "status"}


def test_endpoint_urls_follow_the_callback_url_policy(stack, world):
    a = world.a
    for url in ("http://169.254.169.254/latest", "http://10.0.0.7/hook", "ftp://example.com/x", "http://100.64.0.1/"):
        response = stack.client().post(
            f"/v1/organizations/{a.organization_id}/webhook-endpoints",
            json={"url": url, "event_types": ["*"]},
            headers=a.headers["org_admin"],
        )
        assert response.status_code == 422, url
        assert response.get_json()["errors"][0]["pointer"] == "/url"
    assert stack.sql("SELECT count(*) FROM webhook_endpoints WHERE url_encrypted IS NULL") == [(0,)]


def test_secrets_are_shown_once_stored_encrypted_and_rotatable(worker, world, httpserver):
    a = world.a
    path = unique_path()
    httpserver.expect_request(path).respond_with_data("ok")
    with endpoint(worker, a.headers["org_admin"], a.organization_id, httpserver.url_for(path)) as hook:
        listed = (
            worker.client()
            .get(f"/v1/organizations/{a.organization_id}/webhook-endpoints?limit=200", headers=a.headers["org_admin"])
            .get_json()
        )
        (mine,) = [item for item in listed["items"] if item["id"] == hook["id"]]
        assert "secret" not in mine and mine["url"] == httpserver.url_for(path)
        (sealed,) = worker.sql("SELECT secret_encrypted FROM webhook_endpoints WHERE id = %s", (hook["id"],))[0]
        assert hook["secret"].encode() not in bytes(sealed)
        rotated = worker.client().post(
            f"/v1/webhook-endpoints/{hook['id']}/rotate-secret", headers=a.headers["org_admin"]
        )
        assert rotated.status_code == 200
        secret = rotated.get_json()["secret"]
        assert secret.startswith("whsec_") and secret != hook["secret"]
        event_id, _ = register_resident(worker, a.buildings["A1"])
        (request,) = wait_until(
            lambda: [r for r in requests_to(httpserver, path) if r.headers["webhook-id"] == event_id],
            30,
            message="no webhook after the rotation",
        )
        assert Webhook(secret).verify(request.get_data(as_text=True), dict(request.headers))["id"] == event_id


# --- 24 hours of failures, on the webhook clock -------------------------------------------------

# --- endpoints and events made through the models (a private organization per test) -----------


def organization_with_endpoints(stack, *urls):
    """A new organization with one ``"*"`` endpoint per URL (no API check: the delivery's policy decides)."""
    with stack.context(), unit_of_work() as uow:
        organization = Organization(name=f"Org hooks {uuid.uuid4().hex[:6]}")
        uow.session.add(organization)
        uow.session.flush()
        hooks = [
            WebhookEndpoint(organization_id=organization.id, url=url, event_types=["*"], secret=new_secret())
            for url in urls
        ]
        uow.session.add_all(hooks)
        uow.session.flush()
        return organization.id, [str(hook.id) for hook in hooks]


def user_event(stack, organization_id, type_="user.banned"):
    """One committed ``user.banned`` / ``user.unbanned`` event of the organization, handed to the bus; its id."""
    with stack.context(), unit_of_work():
        subject = uuid.uuid4()
        event = record(
            type_,
            organization_id=organization_id,
            building_id=None,
            aggregate=("user", subject),
            data={"user_id": str(subject)},
        )
        return str(event.id)


#: One day of an endpoint's life in 8.64 s: the retries (about 31.7 h) and the disable window (24 h).
SCALE = 0.0001


def test_an_endpoint_that_failed_every_attempt_for_24_hours_is_disabled(isolated_stack_factory, httpserver):
    stack = isolated_stack_factory(WEBHOOK_RETRY_SCALE=str(SCALE))
    stack.start_worker()
    failing, healthy = unique_path(), unique_path()
    httpserver.expect_request(failing).respond_with_response(Response("down", status=503))
    httpserver.expect_request(healthy).respond_with_data("ok")
    organization_id, made = organization_with_endpoints(stack, httpserver.url_for(failing), httpserver.url_for(healthy))
    ids = dict(zip((failing, healthy), made, strict=True))
    event_id = user_event(stack, organization_id)

    def status(path):
        return stack.sql("SELECT status FROM webhook_endpoints WHERE id = %s", (ids[path],))[0][0]

    wait_until(lambda: status(failing) == "disabled", 60, interval=0.2, message="the failing endpoint stayed enabled")
    (row,) = deliveries_of(stack, ids[failing])
    assert row[0] == event_id and row[1] == "failed"
    attempts = requests_to(httpserver, failing)
    assert len(attempts) == row[2] >= 2 and {r.headers["webhook-id"] for r in attempts} == {event_id}
    first_failed, disabled_at = stack.sql(
        "SELECT failing_since, disabled_at FROM webhook_endpoints WHERE id = %s", (ids[failing],)
    )[0]
    assert (disabled_at - first_failed).total_seconds() >= event_webhooks.DISABLE_AFTER.total_seconds() * SCALE
    assert status(healthy) == "enabled" and deliveries_of(stack, ids[healthy]) == [(event_id, "delivered", 1, 200)]

    # Disabled: a later event is offered to the healthy endpoint only.
    later = user_event(stack, organization_id, "user.unbanned")
    wait_until(
        lambda: any(r.headers["webhook-id"] == later for r in requests_to(httpserver, healthy)),
        30,
        message="the healthy endpoint never got the later event",
    )
    assert len(requests_to(httpserver, failing)) == len(attempts)
    assert [r[0] for r in deliveries_of(stack, ids[failing])] == [event_id]


def test_a_redelivered_event_writes_no_second_delivery_and_sends_nothing_twice(worker, httpserver):
    """The delivery rows are the subscriber's effect, committed with its receipt: exactly once."""
    from app.events import dispatch
    from app.subscribers.operator_webhooks import NAME

    path = unique_path()
    httpserver.expect_request(path).respond_with_data("ok")
    organization_id, (endpoint_id,) = organization_with_endpoints(worker, httpserver.url_for(path))
    event_id = user_event(worker, organization_id)
    wait_until(
        lambda: deliveries_of(worker, endpoint_id) == [(event_id, "delivered", 1, 200)],
        30,
        message=lambda: f"never delivered: {deliveries_of(worker, endpoint_id)}",
    )
    with worker.context():
        assert dispatch.deliver(NAME, uuid.UUID(event_id)) is False  # the receipt is there: nothing to do
        with unit_of_work():
            assert event_webhooks.fan_out(db.session.get(Event, uuid.UUID(event_id))) == []  # the row is unique
    assert deliveries_of(worker, endpoint_id) == [(event_id, "delivered", 1, 200)]
    assert [r.headers["webhook-id"] for r in requests_to(httpserver, path)] == [event_id]


def test_metrics_count_failures_per_endpoint_id_and_the_delivery_lag(isolated_stack, httpserver):
    """In this process (a test stack's worker has no shared metrics directory): the attempt runs here."""
    from prometheus_client import REGISTRY

    from app.events import dispatch
    from app.subscribers.operator_webhooks import NAME

    path = unique_path()
    for status in (500, 200):
        httpserver.expect_ordered_request(path).respond_with_response(Response("x", status=status))
    stack = isolated_stack  # no worker: the messages wait in Redis, the test makes each step
    organization_id, (endpoint_id,) = organization_with_endpoints(stack, httpserver.url_for(path))
    event_id = user_event(stack, organization_id)
    with stack.context():
        assert dispatch.deliver(NAME, uuid.UUID(event_id)) is True
        ((delivery_id,),) = stack.sql(
            "SELECT id::text FROM webhook_endpoint_deliveries WHERE endpoint_id = %s", (endpoint_id,)
        )
        lag_before = REGISTRY.get_sample_value("webhook_endpoint_delivery_lag_seconds_count") or 0.0
        assert event_webhooks.deliver(delivery_id) == "retry"
        assert REGISTRY.get_sample_value("webhook_endpoint_failures_total", {"endpoint_id": endpoint_id}) == 1.0
        wait_until(lambda: event_webhooks.deliver(delivery_id) != "skipped", 10, message="the retry never came due")
    assert deliveries_of(stack, endpoint_id) == [(event_id, "delivered", 2, 200)]
    assert REGISTRY.get_sample_value("webhook_endpoint_failures_total", {"endpoint_id": endpoint_id}) == 1.0
    assert REGISTRY.get_sample_value("webhook_endpoint_delivery_lag_seconds_count") == lag_before + 1
    labels = {
        tuple(sorted(sample.labels))
        for family in REGISTRY.collect()
        if family.name.startswith("webhook_endpoint")
        for sample in family.samples
    }
    assert ("endpoint_id",) in labels and not any("url" in names for names in labels)


def test_the_url_policy_applies_again_at_delivery(worker):
    """A URL that the policy refuses now (stored before, or its name rebound) is never called: failed at once."""
    organization_id, (endpoint_id,) = organization_with_endpoints(worker, "http://169.254.169.254/latest/meta-data")
    event_id = user_event(worker, organization_id)

    def settled():
        rows = worker.sql(
            "SELECT status, attempts, last_error, event_id::text FROM webhook_endpoint_deliveries"
            " WHERE endpoint_id = %s",
            (endpoint_id,),
        )
        return rows if rows and rows[0][0] != "pending" else None

    ((status, attempts, error, delivered_event),) = wait_until(settled, 30, message="the delivery never settled")
    assert (status, attempts, delivered_event) == ("failed", 1, event_id)
    assert error.startswith("destination refused"), error
    assert worker.sql("SELECT failing_since IS NOT NULL FROM webhook_endpoints WHERE id = %s", (endpoint_id,)) == [
        (True,)
    ]
