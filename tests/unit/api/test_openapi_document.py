"""The OpenAPI document: clean unique operationIds, every problem answer documented, typed jobs.

Built from the app itself (no server needed: creating the app connects to nothing).
"""

from __future__ import annotations

import typing

import pytest

from app.api.openapi import PROBLEM_CONTENT_TYPE, problem_statuses
from app.jobs.documents import JobDocument
from app.jobs.types import JOB_TYPES
from config.settings import Settings

ENV = {
    "APP_ENV": "test",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "SECRET_KEY": "k" * 48,
    "ENCRYPTION_KEYS": "dev1:" + "A" * 43 + "=",
    "BLIND_INDEX_KEY": "dev:" + "A" * 43 + "=",
}


@pytest.fixture(scope="module")
def document() -> dict[str, typing.Any]:
    from app import create_app

    return create_app(Settings.from_env(ENV)).api_doc


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_operation_ids_are_the_views_names_and_unique(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)) >= 50
    assert {"create_booking", "get_job", "login", "list_bookings", "cancel_booking", "search_availability"} <= set(ids)
    assert all(i.isidentifier() and i.islower() and "v1" not in i for i in ids), ids


def test_every_problem_answer_is_a_problem_document(document):
    assert list(problem_statuses(document)) == []
    assert document["components"]["schemas"]["Problem"]["properties"]["type"]["type"] == "string"


def test_every_operation_documents_the_problems_any_request_can_meet(document):
    for path, method, operation in operations(document):
        statuses = {int(s) for s in operation["responses"]}
        assert {422, 429, 503} <= statuses, (path, method)
        if operation.get("security"):
            assert {401, 403} <= statuses, (path, method)
        if method in ("post", "put", "patch"):
            assert {400, 413, 415} <= statuses, (path, method)
        if "{" in path:
            assert 404 in statuses, (path, method)
        assert list(operation["responses"]["414"]["content"]) == ["text/html"]  # gunicorn's, not ours
        for status, answer in operation["responses"].items():
            if int(status) >= 400 and status != "414":
                assert list(answer["content"]) == [PROBLEM_CONTENT_TYPE], (path, method, status)


def test_idempotent_operations_document_their_header_and_the_409_of_a_key_in_flight(document):
    for path in ("/v1/system/ping", "/v1/bookings", "/v1/bookings/{booking_id}/cancel"):
        operation = document["paths"][path]["post"]
        assert "409" in operation["responses"]
        (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
        assert header["name"] == "Idempotency-Key" and header["required"] is False
    login = document["paths"]["/v1/auth/login"]["post"]
    assert not [p for p in login.get("parameters", []) if p["in"] == "header"]


def test_every_job_accepting_operation_documents_its_location_header(document):
    accepting = [
        (path, method, op["responses"]["202"])
        for path, method, op in operations(document)
        if "202" in op["responses"]
        and op["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobAccepted")
    ]
    assert {"/v1/system/ping", "/v1/bookings", "/v1/pricing/recalculations", "/v1/me/anonymize"} <= {
        path for path, _, _ in accepting
    }
    for path, method, answer in accepting:
        location = answer["headers"]["Location"]
        assert location["required"] is True and location["schema"]["type"] == "string", (path, method)
        assert "/v1/jobs/" in location["description"]


@pytest.mark.parametrize("job_type", sorted(JOB_TYPES))
def test_every_job_type_has_its_typed_document(job_type):
    queued = {
        "id": "j",
        "type": job_type,
        "status": "queued",
        "progress": None,
        "result": None,
        "error": None,
        "attempts": 0,
        "created_at": "2026-12-01T00:00:00Z",
        "started_at": None,
        "finished_at": None,
    }
    variant = JobDocument.model_validate(queued).root
    assert variant.type == job_type
    assert type(variant).__name__ != "JobDocument"


def test_a_job_of_a_type_this_version_does_not_run_is_shown_without_a_result():
    failed = {
        "id": "j",
        "type": "retired.job",
        "status": "failed",
        "progress": None,
        "result": None,
        "error": {"type": "/problems/internal-error", "title": "Internal error", "status": 500, "detail": "x"},
        "attempts": 0,
        "created_at": "2026-12-01T00:00:00Z",
        "started_at": None,
        "finished_at": "2026-12-01T00:00:01Z",
    }
    variant = JobDocument.model_validate(failed).root
    assert type(variant).__name__ == "UnknownTypeJob" and variant.type == "retired.job"
    assert JobDocument.model_validate(failed).model_dump(mode="json", exclude_unset=True) == failed


def test_a_job_result_of_the_wrong_shape_is_refused():
    """The union is what types a result: a booking job cannot carry a ping's result."""
    with pytest.raises(ValueError):
        JobDocument.model_validate(
            {
                "id": "j",
                "type": "booking.create",
                "status": "succeeded",
                "progress": None,
                "result": {"pong": True},
                "error": None,
                "attempts": 1,
                "created_at": "2026-12-01T00:00:00Z",
                "started_at": None,
                "finished_at": None,
            }
        )


def test_a_booking_job_result_is_a_typed_booking(document):
    schemas = document["components"]["schemas"]
    variants = [v["$ref"].rsplit("/", 1)[1] for v in schemas["JobDocument"]["oneOf"]]
    assert len(variants) == len(JOB_TYPES) + 1  # and UnknownTypeJob
    assert schemas["BookingCreateJob"]["properties"]["type"]["const"] == "booking.create"
    assert schemas["UnknownTypeJob"]["properties"]["type"]["not"] == {"enum": sorted(JOB_TYPES)}
    result = schemas["BookingCreateJob"]["properties"]["result"]
    assert {"$ref": "#/components/schemas/BookingResult"} in result["anyOf"]
    assert schemas["BookingResult"]["properties"]["booking"] == {"$ref": "#/components/schemas/BookingDocument"}


def test_me_resident_is_typed(document):
    resident = document["components"]["schemas"]["MeResponse"]["properties"]["resident"]
    assert {"$ref": "#/components/schemas/ResidentDocument"} in resident["anyOf"]


def test_response_shapes_are_closed(document):
    """additionalProperties false: a generated client has a typed attribute per field, and no bag."""
    for name in ("BookingDocument", "BlockPage", "JobAccepted", "PingJob", "MeResponse", "TokenResponse"):
        assert document["components"]["schemas"][name]["additionalProperties"] is False, name


def test_mfa_verify_takes_exactly_one_factor(document):
    schema = document["components"]["schemas"]["MfaVerifyRequest"]
    assert schema["oneOf"] == [{"required": ["code"]}, {"required": ["recovery_code"]}]
    assert schema["properties"]["code"]["type"] == schema["properties"]["recovery_code"]["type"] == "string"


def test_bookings_by_status_names_every_booking_status(document):
    from app.domain.bookings import BookingStatus

    schema = document["components"]["schemas"]["BookingsByStatus"]
    assert set(schema["required"]) == {str(s) for s in BookingStatus}
