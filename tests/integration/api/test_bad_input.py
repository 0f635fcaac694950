"""Hostile input is a 4xx problem and changes nothing: never a 500 (issue 10, item 16).

Each case was a 500 before: JSON nested thousands deep overflowed the parser's (and the NUL
scan's) recursion; a cursor carrying NUL reached PostgreSQL, which cannot hold it in text; a cursor
instant with an offset beyond PostgreSQL's +-15:59 was sent as it was.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api.test_http_edge import assert_problem


def cursor_of(values: list[object]) -> str:
    """A cursor as the API encodes them (urlsafe base64 of a JSON array, unpadded)."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def post_raw(stack, auth, text: str):
    return stack.client().post("/v1/system/ping", data=text, headers={**auth, "Content-Type": "application/json"})


# --- JSON depth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    ["[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000, '{"sleep_ms": ' + "[" * 5000 + "]" * 5000 + "}"],
    ids=["arrays", "objects", "inside-a-field"],
)
def test_json_nested_thousands_deep_is_a_400(stack, auth, document):
    body = assert_problem(post_raw(stack, auth, document), 400, "malformed-request")
    assert "deep" in body["detail"]


def test_json_one_level_past_the_limit_is_a_400_and_at_the_limit_is_read(stack, auth):
    from app.api.edge import MAX_JSON_DEPTH

    # {"sleep_ms": [[...]]}: the object is level 1, so the arrays fill the rest.
    at_limit = '{"sleep_ms": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    too_deep = '{"sleep_ms": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}"
    body = assert_problem(post_raw(stack, auth, at_limit), 422, "validation-error")
    assert body["errors"][0]["pointer"] == "/sleep_ms"
    assert_problem(post_raw(stack, auth, too_deep), 400, "malformed-request")


def test_a_nul_deep_inside_an_allowed_document_is_still_found(stack, auth):
    nested = '{"sleep_ms": ' + "[" * 10 + '"a\\u0000b"' + "]" * 10 + "}"
    body = assert_problem(post_raw(stack, auth, nested), 422, "validation-error")
    assert body["errors"][0]["pointer"] == "/sleep_ms" + "/0" * 10


def test_a_deep_body_creates_no_job(stack, auth):
    before = stack.client().get("/v1/jobs", headers=auth).get_json()["items"]
    post_raw(stack, auth, "[" * 5000 + "]" * 5000)
    assert stack.client().get("/v1/jobs", headers=auth).get_json()["items"] == before


# --- cursors ---------------------------------------------------------------------------------


def test_a_cursor_holding_nul_is_a_422_at_cursor(world):
    units = f"/v1/buildings/{world.a.buildings['A1']}/units"
    for values in (["10\u0000", str(uuid.uuid4())], ["10", "ab\u0000cd"]):
        response = world.call("get", units, world.admin, query_string={"cursor": cursor_of(values)})
        body = assert_problem(response, 422, "validation-error")
        assert body["errors"] == [{"pointer": "/cursor", "detail": "invalid cursor"}]


@pytest.mark.parametrize(
    "values",
    [
        [["a"], str(uuid.uuid4())],  # a list where a text is expected
        [{"a": 1}, str(uuid.uuid4())],
        [10, str(uuid.uuid4())],  # a number where a text is expected
        ["10", 12345],
        ["10", None],
        "10",  # not a list
        [],
        [[[[["deep"]]]], str(uuid.uuid4())],
    ],
    ids=["list", "object", "number", "number-id", "null-id", "string", "empty", "nested"],
)
def test_a_cursor_value_of_the_wrong_kind_is_a_422_at_cursor(world, values):
    units = f"/v1/buildings/{world.a.buildings['A1']}/units"
    response = world.call("get", units, world.admin, query_string={"cursor": cursor_of(values)})
    assert_problem(response, 422, "validation-error")
    assert response.get_json()["errors"][0]["pointer"] == "/cursor"


@pytest.mark.parametrize("offset", ["+20:00", "-23:59", "+15:59", "-16:00"])
def test_a_cursor_instant_with_an_offset_postgres_cannot_hold_is_read_in_utc(stack, auth, offset):
    cursor = cursor_of([f"2030-01-01T00:00:00{offset}", str(uuid.uuid4())])
    response = stack.client().get("/v1/jobs", headers=auth, query_string={"cursor": cursor})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["items"] == []  # the caller has no jobs at all


def test_a_cursor_instant_that_leaves_the_calendar_in_utc_is_a_422(stack, auth):
    cursor = cursor_of(["0001-01-01T00:00:00+15:00", str(uuid.uuid4())])
    response = stack.client().get("/v1/jobs", headers=auth, query_string={"cursor": cursor})
    assert_problem(response, 422, "validation-error")
    assert response.get_json()["errors"][0]["pointer"] == "/cursor"


def test_a_cursor_instant_without_an_offset_is_a_422(stack, auth):
    cursor = cursor_of(["2030-01-01T00:00:00", str(uuid.uuid4())])
    response = stack.client().get("/v1/jobs", headers=auth, query_string={"cursor": cursor})
    assert_problem(response, 422, "validation-error")


def test_a_cursor_the_api_issued_still_pages(world):
    units = f"/v1/buildings/{world.a.buildings['A1']}/units"
    # The world's first building has one unit; a cursor past it gives an empty page.
    first = world.call("get", units, world.admin, query_string={"limit": 1}).get_json()
    (unit,) = first["items"]
    cursor = cursor_of([unit["unit_number"], unit["id"]])
    page = world.call("get", units, world.admin, query_string={"cursor": cursor})
    assert page.status_code == 200 and page.get_json()["items"] == []


def test_no_cursor_whatever_it_holds_is_a_server_error(world, stack, auth):
    """Property: any JSON in a cursor, for lists keyed by text, UUID and instant, is a 200 or a 422."""
    offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
    instants = st.builds(
        lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        offsets.map(lambda d: timedelta(minutes=d // timedelta(minutes=1))),
    )
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | instants
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner))
    keyed = st.lists(instants | st.uuids().map(str) | st.text() | values, max_size=3)
    lists = [(f"/v1/buildings/{world.a.buildings['A1']}/units", world.admin), ("/v1/jobs", auth)]

    @given(cursor=keyed | values)
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answered(cursor):
        for path, headers in lists:
            response = stack.client().get(path, headers=headers, query_string={"cursor": cursor_of(cursor)[:512]})
            assert response.status_code in (200, 422), (path, cursor, response.get_json())

    answered()


# --- instants in query strings and bodies ----------------------------------------------------


@pytest.mark.parametrize("offset", ["+20:00", "-23:59"])
def test_every_instant_query_field_takes_offsets_postgres_cannot_hold(world, offset):
    a = world.a
    building = a.buildings["A1"]
    moment = f"2030-01-01T00:00:00{offset}"
    later = f"2030-02-01T00:00:00{offset}"
    calls = [
        (f"/v1/buildings/{building}/availability", a.headers["resident"], {"from": moment, "to": later}),
        ("/v1/bookings", a.headers["resident"], {"from": moment, "to": later}),
        (f"/v1/buildings/{building}/stats", a.headers["org_admin"], {"from": moment, "to": later}),
        (f"/v1/organizations/{a.organization_id}/stats", a.headers["org_admin"], {"from": moment, "to": later}),
    ]
    for path, headers, query in calls:
        response = world.call("get", path, headers, query_string=query)
        assert response.status_code == 200, (path, response.get_json())


@pytest.fixture
def own_building(world):
    """A building of an organization of our own (the world is only read)."""
    admin = world.admin
    org = world.call("post", "/v1/organizations", admin, json={"name": f"Bad input {uuid.uuid4().hex[:6]}"})
    body = {"name": "Offsets", "address": "Calle 1", "contact_email": "ops@example.test"}
    building = world.call("post", f"/v1/organizations/{org.get_json()['id']}/buildings", admin, json=body)
    spot = world.call("post", f"/v1/buildings/{building.get_json()['id']}/spots", admin, json={"spot_number": "V1"})
    return building.get_json()["id"], spot.get_json()["id"]


def test_instant_body_fields_take_offsets_postgres_cannot_hold(world, own_building):
    admin, (building, spot) = world.admin, own_building
    block = {"start": "2031-03-01T20:00:00+20:00", "end": "2031-03-02T07:00:00+20:00", "duration": "11h"}
    response = world.call("post", f"/v1/spots/{spot}/blocks", admin, json={**block, "base_price_clp": 5000})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["start"] == "2031-03-01T00:00:00Z"
    rule = {"name": "far", "priority": 1, "multiplier": 1.5}
    rule |= {"starts_at": "2031-03-01T00:00:00-23:00", "ends_at": "2031-03-05T00:00:00+23:00"}
    response = world.call("post", f"/v1/buildings/{building}/pricing-rules", admin, json=rule)
    assert response.status_code == 201, response.get_json()
