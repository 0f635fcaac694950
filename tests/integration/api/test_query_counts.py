"""Lists cost a fixed number of SQL statements, however many rows they return (no query per row)."""

import contextlib

from sqlalchemy import event

from app.extensions import db
from tests.support.world import make_residents, new_block, new_spot


@contextlib.contextmanager
def counted(stack):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with stack.context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def statements_for(stack, path, headers):
    with counted(stack) as statements:
        response = stack.client().get(path, headers=headers)
    assert response.status_code == 200, response.get_json()
    return len(statements), len(response.get_json()["items"])


def test_listing_residents_costs_the_same_for_one_or_many(stack, world):
    a = world.a
    path = f"/v1/buildings/{a.buildings['A1']}/residents"
    few, one = statements_for(stack, path + "?limit=1", a.headers["org_admin"])
    make_residents(stack, a.buildings["A1"], 5)
    many, rows = statements_for(stack, path + "?limit=200", a.headers["org_admin"])
    assert one == 1 and rows >= 6
    assert many == few


def test_listing_bookings_costs_the_same_for_one_or_many(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    for i in range(2):  # the building allows two upcoming bookings per resident
        spot = new_spot(worker, world.admin, a.buildings["A1"])
        block = new_block(worker, world.admin, spot, starts_in_minutes=60 * (300 + 12 * i))
        accepted = worker.client().post(
            "/v1/bookings",
            json={"availability_block_id": block, "visitor_name": "V", "vehicle_plate": f"QC{i}123"},
            headers=headers,
        )
        assert worker.wait_job(headers, accepted.get_json()["job_id"])["status"] == "succeeded"
    few, one = statements_for(worker, "/v1/bookings?limit=1", headers)
    many, rows = statements_for(worker, "/v1/bookings?limit=200", headers)
    assert one == 1 and rows == 2
    assert many == few
