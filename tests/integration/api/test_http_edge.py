"""Every response, errors included, is well-formed: problem+json, trace id and security headers."""

import json
import re

import pytest

from app import create_app

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def assert_problem(response, status, slug):
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["trace_id"] == response.headers["X-Request-ID"]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    return body


def test_unknown_path_is_a_404_problem(stack):
    assert_problem(stack.client().get("/v1/nothing-here"), 404, "not-found")


def test_wrong_method_is_a_405_problem_with_allow(stack):
    response = stack.client().delete("/v1/auth/login")
    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_a_400_problem(stack, auth):
    response = stack.client().post(
        "/v1/system/ping", data='{"sleep_ms": ', headers={**auth, "Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed-request")


def test_invalid_utf8_is_a_400_problem(stack, auth):
    response = stack.client().post(
        "/v1/system/ping", data=b'{"a": "\xff"}', headers={**auth, "Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed-request")


def test_wrong_types_are_a_422_problem_with_pointers(stack, auth):
    response = stack.client().post("/v1/system/ping", json={"sleep_ms": "soon", "fail": "maybe"}, headers=auth)
    body = assert_problem(response, 422, "validation-error")
    assert {e["pointer"] for e in body["errors"]} == {"/sleep_ms", "/fail"}
    assert all(e["detail"] for e in body["errors"])


def test_a_body_that_is_not_an_object_is_a_422(stack, auth):
    assert_problem(stack.client().post("/v1/system/ping", json=[1, 2], headers=auth), 422, "validation-error")


def test_non_json_bodies_are_a_415_problem(stack, auth):
    response = stack.client().post("/v1/system/ping", data="sleep_ms=1", headers={**auth, "Content-Type": "text/plain"})
    assert_problem(response, 415, "unsupported-media-type")


def test_bodies_over_one_mebibyte_are_a_413_problem(stack, auth):
    body = json.dumps({"padding": "x" * (1024 * 1024)})
    response = stack.client().post("/v1/system/ping", data=body, headers={**auth, "Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")


def test_missing_token_is_a_401_problem(stack):
    assert_problem(stack.client().get("/v1/jobs"), 401, "unauthenticated")


def test_unexpected_errors_are_a_500_problem_without_internals(stack):
    app = create_app(stack.settings)

    @app.get("/_boom")
    def boom():  # a bug, as far as the client can tell
        raise RuntimeError("secret internal detail: SELECT * FROM users")

    response = app.test_client().get("/_boom")
    body = assert_problem(response, 500, "internal-error")
    assert "secret" not in response.get_data(as_text=True)
    assert "SELECT" not in response.get_data(as_text=True)
    assert "Traceback" not in body["detail"]


def test_request_id_is_echoed_and_traceparent_wins(stack):
    assert stack.client().get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = stack.client().get("/healthz", headers={"traceparent": traceparent, "X-Request-ID": "other"})
    assert response.headers["X-Request-ID"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    generated = stack.client().get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_success_responses_carry_the_security_headers_too(stack, auth):
    response = stack.client().get("/v1/me", headers=auth)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_is_sent_over_https(stack):
    response = stack.client().get("/healthz", base_url="https://api.example.test")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_health_and_readiness(stack):
    assert stack.client().get("/healthz").get_json() == {"status": "ok"}
    ready = stack.client().get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"postgres": "ok", "redis": "ok", "broker": "ok"}


def test_readiness_is_503_when_redis_is_down(stack):
    env = {**stack.env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    from config.settings import Settings

    app = create_app(Settings.from_env(env))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["postgres"] == "ok" and checks["redis"] == "unavailable" and checks["broker"] == "unavailable"


def test_metrics_expose_requests_and_jobs(stack, auth):
    stack.client().post("/v1/system/ping", json={}, headers=auth)
    text = stack.client().get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{endpoint="/v1/system/ping",method="POST",status="202"}' in text
    # Unfinished jobs only (the shared worker may already have run this one): test_metrics.py counts them.
    assert "# TYPE jobs gauge" in text
    assert re.search(r'^celery_queue_depth\{queue="[^"]+"\} \d', text, re.M)
    assert "http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/auth/login", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/me", "get"),
        ("/v1/me/webhook-secret", "get"),
        ("/v1/me/webhook-secret", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{job_id}", "get"),
        ("/v1/system/ping", "post"),
    ],
)
def test_openapi_describes_every_endpoint(stack, path, method):
    document = stack.client().get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert method in document["paths"][path]


def test_openapi_request_schemas_come_from_the_pydantic_models(stack):
    document = stack.client().get("/openapi.json").get_json()
    ping = document["components"]["schemas"]["PingRequest"]["properties"]
    assert ping["sleep_ms"]["maximum"] == 5000
    assert "callback_url" in ping


def test_docs_page_renders_with_its_own_policy(stack):
    response = stack.client().get("/docs")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    assert "/openapi.json" in response.get_data(as_text=True)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    asset = stack.client().get("/docs/swagger/js/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_nul_characters_are_refused_in_bodies_and_query_strings(stack, auth):
    body = stack.client().post("/v1/system/ping", json={"callback_url": "http://x\u0000y/"}, headers=auth)
    assert_problem(body, 422, "validation-error")
    assert body.get_json()["errors"][0]["pointer"] == "/callback_url"
    query = stack.client().get("/v1/jobs?type=a%00b", headers=auth)
    assert_problem(query, 422, "validation-error")
    assert query.get_json()["errors"][0]["pointer"] == "/type"


def test_instants_with_offsets_postgres_cannot_hold_are_taken_in_utc(stack, auth):
    response = stack.client().get("/v1/bookings?to=2701-07-14T07:49:13-22:36", headers=auth)
    assert response.status_code == 200
