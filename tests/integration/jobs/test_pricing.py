"""Yield management: rules, quotes, the recalculation job; search, quote and booking agree."""

import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.unit_of_work import unit_of_work
from tests.support.stack import BIN, ROOT
from tests.support.world import make_residents, new_block, new_spot

pytestmark = pytest.mark.slow


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def block_start(stack, block_id):
    return stack.sql("SELECT start_at FROM availability_blocks WHERE id = %s", (block_id,))[0][0]


def add_rule(stack, headers, building_id, *, around, priority=10, multiplier="2.0", name=None, minutes=5):
    body = {
        "name": name or f"rule-{uuid.uuid4().hex[:6]}",
        "priority": priority,
        "starts_at": iso(around - timedelta(minutes=minutes)),
        "ends_at": iso(around + timedelta(minutes=minutes)),
        "multiplier": multiplier,
    }
    response = stack.client().post(f"/v1/buildings/{building_id}/pricing-rules", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def quote(stack, headers, block_id):
    response = stack.client().get(f"/v1/availability-blocks/{block_id}/quote", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def searched_price(stack, headers, building_id, block_id):
    start = block_start(stack, block_id)
    window = f"?from={iso(start)}&to={iso(start + timedelta(seconds=1))}&limit=200"
    items = stack.client().get(f"/v1/buildings/{building_id}/availability{window}", headers=headers).get_json()["items"]
    (item,) = [i for i in items if i["id"] == block_id]
    return item["price_clp"]


def test_search_quote_and_booking_agree_under_a_two_times_rule(worker, world):
    a = world.a
    building = a.buildings["A1"]
    (resident,) = make_residents(worker, building, 1)
    headers = worker.login(resident)
    spot = new_spot(worker, world.admin, building)
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 200)
    assert quote(worker, headers, block)["price_clp"] == 5000
    rule = add_rule(worker, a.headers["org_admin"], building, around=block_start(worker, block))
    assert worker.wait_job(a.headers["org_admin"], rule["recalculation_job_id"])["status"] == "succeeded"

    quoted = quote(worker, headers, block)
    assert quoted == {
        "base_price_clp": 5000,
        "multiplier": "2",
        "price_clp": 10000,
        "commission_clp": 1000,
        "rule_id": rule["id"],
    }
    assert searched_price(worker, headers, building, block) == 10000
    accepted = worker.client().post(
        "/v1/bookings",
        json={
            "availability_block_id": block,
            "visitor_name": "V",
            "vehicle_plate": "QQ1111",
            "expected_price_clp": 10000,
        },
        headers=headers,
    )
    booking = worker.wait_job(headers, accepted.get_json()["job_id"])["result"]["booking"]
    assert (booking["price_clp"], booking["commission_clp"]) == (10000, 1000)


def test_the_higher_priority_wins_and_equal_priority_goes_to_the_newest(worker, world):
    a = world.a
    building = a.buildings["A1"]
    spot = new_spot(worker, world.admin, building)
    block = new_block(worker, world.admin, spot, starts_in_minutes=60 * 220)
    start = block_start(worker, block)
    admin = a.headers["org_admin"]
    add_rule(worker, admin, building, around=start, priority=1, multiplier="3.0", minutes=60)
    high = add_rule(worker, admin, building, around=start, priority=9, multiplier="1.5", minutes=30)
    assert quote(worker, admin, block)["rule_id"] == high["id"]
    assert quote(worker, admin, block)["price_clp"] == 7500
    newer = add_rule(worker, admin, building, around=start, priority=9, multiplier="1.2", minutes=10)
    assert quote(worker, admin, block)["rule_id"] == newer["id"]
    assert quote(worker, admin, block)["price_clp"] == 6000
    assert worker.client().delete(f"/v1/pricing-rules/{newer['id']}", headers=admin).status_code == 204
    assert quote(worker, admin, block)["rule_id"] == high["id"]
    listed = worker.client().get(f"/v1/buildings/{building}/pricing-rules?limit=200", headers=admin).get_json()
    assert newer["id"] not in {r["id"] for r in listed["items"]} and high["id"] in {r["id"] for r in listed["items"]}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("multiplier", "0"),
        ("multiplier", "10.5"),
        ("multiplier", "-1"),
        ("priority", "high"),
        ("starts_at", "2030-01-01"),
    ],
)
def test_invalid_rules_are_refused(stack, world, field, value):
    a = world.a
    start = datetime(2030, 1, 1, tzinfo=UTC)
    body = {
        "name": "x",
        "priority": 1,
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=1)),
        "multiplier": "2",
    }
    body[field] = value
    response = stack.client().post(
        f"/v1/buildings/{a.buildings['A1']}/pricing-rules", json=body, headers=a.headers["org_admin"]
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == f"/{field}"


def test_a_rule_ending_before_it_starts_is_refused(stack, world):
    a = world.a
    start = datetime(2030, 1, 1, tzinfo=UTC)
    body = {"name": "x", "priority": 1, "starts_at": iso(start), "ends_at": iso(start), "multiplier": "2"}
    response = stack.client().post(
        f"/v1/buildings/{a.buildings['A1']}/pricing-rules", json=body, headers=a.headers["org_admin"]
    )
    assert response.status_code == 422 and response.get_json()["errors"][0]["pointer"] == "/ends_at"


def test_recalculation_over_100000_blocks_updates_exactly_the_changed_ones(isolated_stack):
    from tests.support.world import build_tenant

    stack = isolated_stack
    stack.start_worker()
    admin = stack.login(stack.create_user(role="platform_admin"))
    tenant = build_tenant(stack, admin, "Big operator", ["B"])
    building = tenant.buildings["B"]
    spot = tenant.spots["B"]
    # 100,000 future blocks, one hour each, set-based.
    stack.sql(
        "INSERT INTO availability_blocks (id, spot_id, building_id, start_at, end_at, duration, base_price_clp,"
        " price_clp, status) SELECT gen_random_uuid(), %s, %s, t, t + interval '1 hour', '11h', 5000, 5000,"
        " 'available' FROM generate_series(now() + interval '3 days', now() + interval '3 days'"
        " + interval '99999 hours', interval '1 hour') AS t",
        (spot, building),
    )
    assert stack.sql("SELECT count(*) FROM availability_blocks WHERE building_id = %s", (building,))[0][0] >= 100_000
    # A 2.0 rule over exactly 1,000 of them, and a 1.0 rule over others (no price change there).
    first = stack.sql(
        "SELECT min(start_at) FROM availability_blocks WHERE building_id = %s AND start_at > now() + interval '2 days'",
        (building,),
    )[0][0]
    for minutes_from, hours, multiplier in ((0, 1000, "2.0"), (60 * 2000, 500, "1")):
        begin = first + timedelta(minutes=minutes_from) - timedelta(minutes=1)
        body = {
            "name": f"m{multiplier}",
            "priority": 1,
            "starts_at": iso(begin),
            "ends_at": iso(begin + timedelta(hours=hours)),
            "multiplier": multiplier,
        }
        created = stack.client().post(f"/v1/buildings/{building}/pricing-rules", json=body, headers=admin)
        assert created.status_code == 201
        stack.wait_job(admin, created.get_json()["recalculation_job_id"], timeout=120)

    stack.sql("UPDATE availability_blocks SET price_clp = base_price_clp WHERE building_id = %s", (building,))
    accepted = stack.client().post("/v1/pricing/recalculations", json={"building_id": building}, headers=admin)
    assert accepted.status_code == 202
    job = stack.wait_job(admin, accepted.get_json()["job_id"], timeout=180)
    assert job["status"] == "succeeded", job
    assert job["result"] == {"blocks_updated": 1000}
    assert job["progress"]["done"] == job["progress"]["total"] >= 100_000
    assert stack.sql(
        "SELECT count(*) FROM availability_blocks WHERE building_id = %s AND price_clp = 10000", (building,)
    ) == [(1000,)]

    again = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "pricing", "recalculate", "--building", building],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert again.returncode == 0, again.stderr
    assert "0 blocks updated" in again.stdout


def test_the_nightly_run_picks_buildings_where_it_is_three_in_the_morning(stack, world):
    from zoneinfo import ZoneInfo

    from app.services import recalculation

    with stack.context():
        before = stack.sql("SELECT count(*) FROM jobs WHERE type = 'pricing.recalculate' AND owner_user_id IS NULL")[0][
            0
        ]
        santiago_three = datetime(2026, 12, 1, 3, 15, tzinfo=ZoneInfo("America/Santiago"))
        with unit_of_work():
            due = recalculation.submit_nightly(santiago_three.astimezone(UTC))
        with unit_of_work():
            not_due = recalculation.submit_nightly((santiago_three + timedelta(hours=1)).astimezone(UTC))
    after = stack.sql("SELECT count(*) FROM jobs WHERE type = 'pricing.recalculate' AND owner_user_id IS NULL")[0][0]
    assert due >= 3 and not_due == 0  # every world building is in Santiago
    assert after - before == due


def test_quotes_follow_tenant_scope(stack, world):
    a, b = world.a, world.b
    assert (
        stack.client().get(f"/v1/availability-blocks/{a.blocks['A1']}/quote", headers=b.headers["resident"]).status_code
        == 404
    )
    assert (
        stack.client().get(f"/v1/availability-blocks/{a.blocks['A1']}/quote", headers=a.headers["resident"]).status_code
        == 200
    )
