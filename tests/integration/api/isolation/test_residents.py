"""The isolation matrix for a building's residents: listing them, verifying one.

The harness (callers, profiles, aims, checks, the run of a case) is tests/support/isolation.py.
"""

from __future__ import annotations

from tests.support.isolation import (
    BUILDING_STAFF_READ,
    Ctx,
    Matrix,
    Scoped,
    at_building,
    at_fresh_pending_resident,
    building_manage,
    check_items_of,
    parametrize,
    run_case,
    snap,
)

MATRIX: Matrix = {
    ("GET", "/v1/buildings/<building_id>/residents"): Scoped(
        "building", BUILDING_STAFF_READ, at_building, "world", query="?limit=200", check=check_items_of("residents")
    ),
    ("POST", "/v1/residents/<resident_id>/verify"): Scoped(
        "building",
        building_manage(200),
        at_fresh_pending_resident,
        "own",
        snapshot=snap("SELECT verified_at, verified_by FROM residents WHERE id = %s", "resident_id"),
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
