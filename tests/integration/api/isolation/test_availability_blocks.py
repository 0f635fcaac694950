"""The isolation matrix for a spot's availability blocks: adding one, blocking and unblocking it.

The harness (callers, profiles, aims, checks, the run of a case) is tests/support/isolation.py.
"""

from __future__ import annotations

from tests.support.isolation import (
    Ctx,
    Matrix,
    Scoped,
    at_fresh_block,
    at_spot,
    building_manage,
    fresh_interval,
    parametrize,
    run_case,
    snap,
)

MATRIX: Matrix = {
    ("POST", "/v1/spots/<spot_id>/blocks"): Scoped(
        "building",
        building_manage(201),
        at_spot,
        "own",
        body=lambda ctx, tenant, label, aim: {**fresh_interval(ctx), "duration": "11h", "base_price_clp": 4000},
        snapshot=snap("SELECT count(*) FROM availability_blocks WHERE spot_id = %s", "spot_id"),
    ),
    ("POST", "/v1/availability-blocks/<block_id>/block"): Scoped(
        "building",
        building_manage(200),
        at_fresh_block(blocked=False),
        "own",
        snapshot=snap("SELECT status, version FROM availability_blocks WHERE id = %s", "block_id"),
    ),
    ("POST", "/v1/availability-blocks/<block_id>/unblock"): Scoped(
        "building",
        building_manage(200),
        at_fresh_block(blocked=True),
        "own",
        snapshot=snap("SELECT status, version FROM availability_blocks WHERE id = %s", "block_id"),
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
