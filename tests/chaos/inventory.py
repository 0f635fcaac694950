"""What the load books: one tenant for the run, fresh spots and blocks for every scenario.

The tenant (organization, building, verified residents) is made once by ``bench/seed.py`` through
the application's models (e-mails, names and RUTs are encrypted, passwords hashed at production
cost), and its residents log in through the API. Each scenario then gets spots and blocks of its
own, inserted set-based, so its checks read only its own rows: ``ceil(needed / BLOCKS_PER_SPOT)``
spots named ``<scenario>-<n>``, each with blocks on days 1-20 at 08:00 and 20:00 UTC (11 h long:
never overlapping, always inside the 30-day booking horizon).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.client import Api
from bench.stack import BenchStack
from bench.tenant import Tenant, login_residents, seed_tenant

BLOCKS_PER_SPOT = 40


@dataclass(frozen=True)
class Blocks:
    distinct: list[str]
    contended: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.distinct, *self.contended]


def make_tenant(stack: BenchStack, residents: int) -> Tenant:
    tenant = seed_tenant(stack, "chaos", residents=residents, max_upcoming=100_000)
    api = Api(stack.api_url or "")
    try:
        login_residents(api, tenant)
    finally:
        api.close()
    return tenant


def make_blocks(stack: BenchStack, building_id: str, scenario: str, distinct: int, contended: int) -> Blocks:
    """``distinct + contended`` new available blocks on new spots of the building."""
    needed = distinct + contended
    spots = max(1, math.ceil(needed / BLOCKS_PER_SPOT))
    rows = stack.sql(
        """
        WITH spots AS (
            INSERT INTO visitor_spots (id, building_id, spot_number, is_active)
            SELECT gen_random_uuid(), %(building)s, %(scenario)s || '-' || n, true FROM generate_series(1, %(spots)s) n
            RETURNING id, building_id
        ), made AS (
            INSERT INTO availability_blocks
                (id, spot_id, building_id, start_at, end_at, duration, base_price_clp, price_clp, status, version)
            SELECT gen_random_uuid(), s.id, s.building_id, t.start_at, t.start_at + interval '11 hours', '11h',
                   5000, 5000, 'available', 1
            FROM spots s
            CROSS JOIN generate_series(0, %(per_spot)s - 1) AS k
            CROSS JOIN LATERAL (
                SELECT date_trunc('day', now()) + make_interval(days => 1 + k / 2)
                       + CASE WHEN k %% 2 = 0 THEN interval '8 hours' ELSE interval '20 hours' END AS start_at
            ) AS t
            RETURNING id, start_at
        )
        SELECT id::text FROM made ORDER BY start_at, id LIMIT %(needed)s
        """,
        {"building": building_id, "scenario": scenario, "spots": spots, "per_spot": BLOCKS_PER_SPOT, "needed": needed},
    )
    ids = [r[0] for r in rows]
    return Blocks(distinct=ids[:distinct], contended=ids[distinct:])
