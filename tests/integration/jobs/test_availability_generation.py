"""Availability generation (DOMAIN.md "Inventory and prices"): two 11-hour blocks per local day,
08:00-19:00 and 20:00-07:00, for the next 30 days, per active spot of an active building, in the
building's own timezone, DST-correct, idempotent; hand-made blocks win.

The job path runs on a real Celery worker. The DST acceptance pins the local start date through
``availability_generation.generate_for_building(..., today=...)`` because the job always starts at
the database's ``now()``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.world import add_staff

DAYS = 30


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


class Site:
    """An organization of our own; an org_admin, a building_admin and a concierge of its first building."""

    def __init__(self, world: Any) -> None:
        self.stack, self.admin = world.stack, world.admin
        client = self.stack.client()
        self.organization_id = _ok(
            client.post("/v1/organizations", json={"name": f"Gen {uuid.uuid4().hex[:6]}"}, headers=self.admin), 201
        )["id"]
        self.people: dict[str, dict[str, Any]] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self._staff("org_admin", [])
        self.main = self.building()["id"]
        self._staff("building_admin", [self.main])
        self._staff("concierge", [self.main])

    def _staff(self, role: str, building_ids: list[str]) -> None:
        person = add_staff(self.stack, self.admin, self.organization_id, role, building_ids)
        self.people[role], self.headers[role] = person, self.stack.login(person)

    def building(self, **fields: Any) -> dict[str, Any]:
        body = {"name": f"B {uuid.uuid4().hex[:6]}", "address": "Calle 1", "contact_email": "ops@x.test"} | fields
        return _ok(
            self.stack.client().post(
                f"/v1/organizations/{self.organization_id}/buildings", json=body, headers=self.headers["org_admin"]
            ),
            201,
        )

    def spots(self, building_id: str, count: int) -> list[str]:
        return [
            _ok(
                self.stack.client().post(
                    f"/v1/buildings/{building_id}/spots",
                    json={"spot_number": f"V{n}"},
                    headers=self.headers["org_admin"],
                ),
                201,
            )["id"]
            for n in range(1, count + 1)
        ]

    def submit(self, building_id: str, role: str = "org_admin") -> Any:
        return self.stack.client().post(
            f"/v1/buildings/{building_id}/availability/generate", headers=self.headers[role]
        )

    def generate(self, building_id: str, role: str = "org_admin") -> dict[str, Any]:
        accepted = self.submit(building_id, role)
        document = _ok(accepted, 202)
        assert document["status"] == "queued" and accepted.headers["Location"] == document["status_url"]
        job = self.stack.wait_job(self.headers[role], document["job_id"], timeout=60)
        assert job["status"] == "succeeded", job
        assert job["type"] == "availability.generate"
        return job


@pytest.fixture(scope="module")
def site(world, worker) -> Site:
    return Site(world)


def blocks_of(stack: Any, building_id: str) -> list[tuple[Any, ...]]:
    return stack.sql(
        "SELECT spot_id::text, start_at, end_at, duration, base_price_clp, price_clp, status, version "
        "FROM availability_blocks WHERE building_id = %s ORDER BY spot_id, start_at",
        (building_id,),
    )


def expected_starts(timezone: str, now: datetime, days: int = DAYS) -> set[datetime]:
    """The 08:00 and 20:00 local starts in (now, now + days], computed with zoneinfo."""
    zone = ZoneInfo(timezone)
    local_today = now.astimezone(zone).date()
    starts = set()
    for offset in range(-1, days + 2):
        day = local_today + timedelta(days=offset)
        for hour in (8, 20):
            start = datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)
            if now < start <= now + timedelta(days=days):
                starts.add(start)
    return starts


def assert_local_shape(timezone: str, start: datetime, end: datetime) -> None:
    """A day block is 08:00-19:00 of one local date; a night block 20:00 to 07:00 of the next."""
    zone = ZoneInfo(timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if local_start.time() == time(8):
        assert (local_end.date(), local_end.time()) == (local_start.date(), time(19)), (local_start, local_end)
    else:
        assert local_start.time() == time(20), local_start
        assert (local_end.date(), local_end.time()) == (local_start.date() + timedelta(days=1), time(7)), (
            local_start,
            local_end,
        )


# --- the job ------------------------------------------------------------------------------------


@pytest.mark.parametrize("timezone", ["America/Santiago", "Asia/Kolkata"])
def test_generation_makes_two_local_blocks_per_day_for_thirty_days(site, timezone):
    building = site.building(timezone=timezone, default_base_price_clp=7000)
    spots = site.spots(building["id"], 2)
    before = datetime.now(UTC)
    job = site.generate(building["id"])
    after = datetime.now(UTC)
    rows = blocks_of(site.stack, building["id"])
    assert job["result"] == {"created": len(rows), "skipped": 0}
    for spot in spots:
        starts = {start for spot_id, start, *_ in rows if spot_id == spot}
        # the job ran between `before` and `after`: every start inside both windows, none outside both
        assert expected_starts(timezone, before) & expected_starts(timezone, after) <= starts
        assert starts <= expected_starts(timezone, before) | expected_starts(timezone, after)
        assert 59 <= len(starts) <= 61
    for _, start, end, duration, base, price, status, version in rows:
        assert_local_shape(timezone, start, end)
        assert (duration, base, price, status, version) == ("11h", 7000, 7000, "available", 1)
    local_days = {start.astimezone(ZoneInfo(timezone)).date() for _, start, *_ in rows}
    first, last = min(local_days), max(local_days)
    assert local_days == {first + timedelta(days=n) for n in range((last - first).days + 1)}, "no day is missing"


def test_generation_is_audited_as_a_job(site):
    building = site.building()
    site.spots(building["id"], 1)
    job = site.generate(building["id"])
    rows = site.stack.sql(
        "SELECT actor_type, actor_id::text, metadata FROM audit_logs "
        "WHERE action = 'availability.generated' AND entity_id = %s",
        (building["id"],),
    )
    assert rows == [("job", site.people["org_admin"]["id"], job["result"])]


def test_running_generation_twice_creates_nothing(site):
    building = site.building()
    site.spots(building["id"], 2)
    first = site.generate(building["id"])["result"]
    rows = blocks_of(site.stack, building["id"])
    assert first["created"] == len(rows) > 0
    second = site.generate(building["id"])["result"]
    assert second["created"] == 0
    assert blocks_of(site.stack, building["id"]) == rows


def test_a_hand_made_block_wins_over_the_generated_slot_it_overlaps(site):
    building = site.building()
    (spot,) = site.spots(building["id"], 1)
    zone = ZoneInfo(building["timezone"])
    tomorrow = datetime.now(UTC).astimezone(zone).date() + timedelta(days=1)
    start = datetime.combine(tomorrow, time(10), tzinfo=zone)
    manual = _ok(
        site.stack.client().post(
            f"/v1/spots/{spot}/blocks",
            json={
                "start": start.isoformat(),
                "end": (start + timedelta(hours=2)).isoformat(),
                "duration": "11h",
                "base_price_clp": 1234,
            },
            headers=site.headers["org_admin"],
        ),
        201,
    )
    result = site.generate(building["id"])["result"]
    assert result["skipped"] == 1
    rows = blocks_of(site.stack, building["id"])
    assert result["created"] == len(rows) - 1
    assert [r for r in rows if r[4] == 1234] == [
        (spot, start.astimezone(UTC), start.astimezone(UTC) + timedelta(hours=2), "11h", 1234, 1234, "available", 1)
    ], f"the hand-made block {manual['id']} is kept as it was"
    day_slot = datetime.combine(tomorrow, time(8), tzinfo=zone).astimezone(UTC)
    assert day_slot not in {r[1] for r in rows}, "the overlapped slot is not generated"
    night_slot = datetime.combine(tomorrow, time(20), tzinfo=zone).astimezone(UTC)
    assert night_slot in {r[1] for r in rows}, "the rest of the day is generated"


def test_inactive_spots_get_no_blocks(site):
    building = site.building()
    active, inactive = site.spots(building["id"], 2)
    site.stack.sql("UPDATE visitor_spots SET is_active = false WHERE id = %s", (inactive,))
    result = site.generate(building["id"])["result"]
    spots = {spot_id for spot_id, *_ in blocks_of(site.stack, building["id"])}
    assert spots == {active}
    assert result["created"] == len(blocks_of(site.stack, building["id"]))


def test_an_archived_building_gets_no_blocks(site):
    building = site.building()
    site.spots(building["id"], 1)
    _ok(
        site.stack.client().patch(
            f"/v1/buildings/{building['id']}", json={"is_active": False}, headers=site.headers["org_admin"]
        )
    )
    assert site.generate(building["id"])["result"] == {"created": 0, "skipped": 0}
    assert blocks_of(site.stack, building["id"]) == []


def test_a_building_admin_may_generate_for_their_building(site):
    site.spots(site.main, 1)
    assert site.generate(site.main, "building_admin")["result"]["skipped"] >= 0


def test_a_concierge_may_not_generate(site):
    response = site.submit(site.main, "concierge")
    assert response.status_code == 403
    assert response.get_json()["type"] == "/problems/forbidden"


def test_another_organizations_admin_does_not_find_the_building(site, world):
    response = site.stack.client().post(
        f"/v1/buildings/{site.main}/availability/generate", headers=world.b.headers["org_admin"]
    )
    assert response.status_code == 404


def test_generation_for_an_unknown_building_is_not_found(site):
    response = site.stack.client().post(
        f"/v1/buildings/{uuid.uuid4()}/availability/generate", headers=site.headers["org_admin"]
    )
    assert response.status_code == 404


def test_generated_blocks_are_found_by_search(site):
    building = site.building()
    (spot,) = site.spots(building["id"], 1)
    site.generate(building["id"])
    found = _ok(
        site.stack.client().get(
            f"/v1/buildings/{building['id']}/availability?limit=200", headers=site.headers["org_admin"]
        )
    )
    assert {b["spot_id"] for b in found["items"]} == {spot}
    assert len(found["items"]) == len(blocks_of(site.stack, building["id"]))


# --- DST (pinned local start date) ------------------------------------------------------------


def test_postgres_and_zoneinfo_agree_on_santiago_local_times(stack):
    """The conversion the service relies on, ``(date + time) AT TIME ZONE tz``, checked in SQL."""
    cases = [(date(2027, 4, 3), time(20)), (date(2027, 4, 4), time(7)), (date(2027, 4, 4), time(8))]
    cases += [(date(2027, 9, 4), time(20)), (date(2027, 9, 5), time(7)), (date(2027, 9, 5), time(8))]
    for day, hour in cases:
        ((converted,),) = stack.sql("SELECT (%s::date + %s::time) AT TIME ZONE 'America/Santiago'", (day, hour))
        expected = datetime.combine(day, hour, tzinfo=ZoneInfo("America/Santiago"))
        assert converted == expected, (day, hour, converted, expected)


def generate_pinned(stack: Any, building_id: str, today: date, days: int) -> dict[str, int]:
    from app.extensions import db
    from app.services import availability_generation

    with stack.context():
        try:
            counts = availability_generation.generate_for_building(uuid.UUID(building_id), days=days, today=today)
            db.session.commit()
        finally:
            db.session.rollback()
    return counts


@pytest.mark.parametrize(
    ("today", "change", "night_hours"),
    [
        (date(2027, 4, 1), date(2027, 4, 3), 12),  # clocks go back at 24:00 on Saturday 3 April
        (date(2027, 9, 2), date(2027, 9, 4), 10),  # clocks go forward at 24:00 on Saturday 4 September
    ],
)
def test_santiago_blocks_stay_at_local_times_across_dst_changes(site, today, change, night_hours):
    building = site.building(timezone="America/Santiago")
    site.spots(building["id"], 1)
    days = 6
    counts = generate_pinned(site.stack, building["id"], today, days)
    rows = blocks_of(site.stack, building["id"])
    assert counts == {"created": len(rows), "skipped": 0}
    zone = ZoneInfo("America/Santiago")
    by_day: dict[date, list[tuple[time, time]]] = {}
    for _, start, end, *_ in rows:
        assert_local_shape("America/Santiago", start, end)
        local = start.astimezone(zone)
        by_day.setdefault(local.date(), []).append((local.time(), end.astimezone(zone).time()))
    for n in range(days):
        day = today + timedelta(days=n)
        assert by_day.get(day) == [(time(8), time(19)), (time(20), time(7))], (day, by_day.get(day))
    assert min(by_day) == today, "nothing before the pinned local day"
    night = next(
        (start, end) for _, start, end, *_ in rows if start.astimezone(zone) == datetime.combine(change, time(20), zone)
    )
    assert night[1] - night[0] == timedelta(hours=night_hours), "the night block spanning the change"
    day_after = change + timedelta(days=1)
    assert [(s.astimezone(zone).time(), e - s) for _, s, e, *_ in rows if s.astimezone(zone).date() == day_after] == [
        (time(8), timedelta(hours=11)),
        (time(20), timedelta(hours=11)),
    ]
    again = generate_pinned(site.stack, building["id"], today, days)
    assert again["created"] == 0 and blocks_of(site.stack, building["id"]) == rows


def test_the_same_idempotency_key_replays_the_first_job(site):
    building = site.building()
    site.spots(building["id"], 1)
    url = f"/v1/buildings/{building['id']}/availability/generate"
    headers = {**site.headers["org_admin"], "Idempotency-Key": f"gen-{uuid.uuid4().hex}"}
    first = _ok(site.stack.client().post(url, headers=headers), 202)
    replay = site.stack.client().post(url, headers=headers)
    assert replay.status_code == 202 and replay.get_json()["job_id"] == first["job_id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    job = site.stack.wait_job(site.headers["org_admin"], first["job_id"], timeout=60)
    assert job["status"] == "succeeded" and job["result"]["created"] == len(blocks_of(site.stack, building["id"]))
