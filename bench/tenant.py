"""A scenario's own tenant: organization, buildings, residents (``bench/seed.py``), then spots,
blocks and pricing rules inserted set-based (``INSERT ... SELECT generate_series``), never row by row.

Every scenario seeds a tenant of its own in the run's database, so scenarios run alone or in any
order and never see each other's rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bench.client import Api, closed_loop
from bench.stack import BIN, BenchError, BenchStack


@dataclass
class Tenant:
    organization_id: str
    buildings: list[str]
    residents: list[dict[str, str]]
    staff: dict[str, str] | None
    #: Filled by ``login_residents``: one access token per resident, in the same order.
    tokens: list[str] = field(default_factory=list)

    @property
    def building(self) -> str:
        return self.buildings[0]


def seed_tenant(
    stack: BenchStack,
    label: str,
    *,
    buildings: int = 1,
    residents: int = 0,
    staff: bool = False,
    max_upcoming: int = 2,
) -> Tenant:
    spec = {
        "label": label,
        "buildings": buildings,
        "residents": residents,
        "staff": staff,
        "max_upcoming": max_upcoming,
    }
    out = stack.run_python_tool(
        [str(BIN / "python"), "-m", "bench.seed", "tenant", "--spec", json.dumps(spec)], f"seeding the {label} tenant"
    )
    made = json.loads(out.strip().splitlines()[-1])
    return Tenant(
        organization_id=made["organization_id"],
        buildings=[b["id"] for b in made["buildings"]],
        residents=made["residents"],
        staff=made["staff"],
    )


def add_spots(stack: BenchStack, building_id: str, count: int) -> int:
    """``count`` active visitor spots ``S00001``... in one statement."""
    stack.sql(
        "INSERT INTO visitor_spots (id, building_id, spot_number, is_active)"
        " SELECT gen_random_uuid(), %s, 'S' || lpad(n::text, 5, '0'), true FROM generate_series(1, %s) AS n",
        (building_id, count),
    )
    return count


#: Block ``k`` (0-based) of a spot: day ``first_day + k / 2`` from today (UTC), at 08:00 or 20:00
#: UTC, 11 hours long. Two blocks a day never overlap, so the exclusion constraint always holds.
_BLOCKS = """
    INSERT INTO availability_blocks
        (id, spot_id, building_id, start_at, end_at, duration, base_price_clp, price_clp, status, version)
    SELECT gen_random_uuid(), s.id, s.building_id, t.start_at, t.start_at + interval '11 hours', '11h',
           p.base, p.base + %(price_offset)s, 'available', 1
    FROM visitor_spots s
    CROSS JOIN generate_series(0, %(per_spot)s - 1) AS k
    CROSS JOIN LATERAL (
        SELECT date_trunc('day', now()) + make_interval(days => %(first_day)s + k / 2)
               + CASE WHEN k %% 2 = 0 THEN interval '8 hours' ELSE interval '20 hours' END AS start_at
    ) AS t
    CROSS JOIN LATERAL (
        SELECT CASE WHEN %(vary_price)s
                    THEN 3000 + 250 * ((k + abs(hashtext(s.spot_number))) %% 9)
                    ELSE 5000 END AS base
    ) AS p
    WHERE s.building_id = %(building)s
"""


def add_blocks(
    stack: BenchStack,
    building_id: str,
    per_spot: int,
    *,
    first_day: int = 1,
    vary_price: bool = False,
    price_offset: int = 0,
) -> int:
    """``per_spot`` available blocks for every spot of the building; the number inserted.

    ``vary_price`` spreads base prices over 3,000-5,000 CLP; ``price_offset`` stores a price that
    differs from the base (what a later reset to the base then rewrites in every row).
    """
    conn = stack.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                _BLOCKS,
                {
                    "building": building_id,
                    "per_spot": per_spot,
                    "first_day": first_day,
                    "vary_price": vary_price,
                    "price_offset": price_offset,
                },
            )
            return int(cur.rowcount)
    finally:
        conn.close()


def block_ids(stack: BenchStack, building_id: str) -> list[str]:
    """The building's available blocks, soonest first (spots interleaved)."""
    rows = stack.sql(
        "SELECT id::text FROM availability_blocks WHERE building_id = %s AND status = 'available'"
        " ORDER BY start_at, spot_id",
        (building_id,),
    )
    return [r[0] for r in rows]


def login_residents(api: Api, tenant: Tenant, concurrency: int = 2) -> list[str]:
    """Log every resident in through ``POST /v1/auth/login`` (argon2 at production cost).

    Setup, not a measurement: two at a time (the API hashes at most ``PASSWORD_HASH_CONCURRENCY``
    passwords at once per process and answers 503 beyond), on a client of its own, so a 503 retried
    here never counts as the scenario's throttling (``api.retried``).
    """
    people = tenant.residents
    setup = Api(api.base_url)
    try:
        done = closed_loop(
            len(people),
            min(concurrency, max(1, len(people))),
            lambda i: setup.login(**_creds(people[i]), default=False),
        )
    finally:
        setup.close()
    if done.errors or done.completed != len(people):
        raise BenchError(f"logging in the residents failed: {done.errors[:3]}")
    tenant.tokens = [str(t) for t in done.results]
    return tenant.tokens


def login_staff(api: Api, tenant: Tenant) -> str:
    if tenant.staff is None:
        raise BenchError("the tenant was seeded without staff")
    staff = tenant.staff
    return api.login(staff["email"], staff["password"], totp_secret=staff["totp_secret"])


def _creds(person: dict[str, Any]) -> dict[str, str]:
    return {"email": person["email"], "password": person["password"]}
