"""The isolation matrix for a building, its units and spots, its stats and availability, generating its blocks.

The harness (callers, profiles, aims, checks, the run of a case) is tests/support/isolation.py.
"""

from __future__ import annotations

from tests.support.isolation import (
    BUILDING_STAFF_READ,
    BUILDING_VIEW,
    Ctx,
    Matrix,
    Scoped,
    at_building,
    building_manage,
    check_availability,
    check_building,
    check_building_stats,
    check_created_in_building,
    check_items_of,
    parametrize,
    run_case,
    snap,
    world_window,
)

MATRIX: Matrix = {
    ("GET", "/v1/buildings/<building_id>"): Scoped(
        "building", BUILDING_VIEW, at_building, "world", check=check_building
    ),
    ("PATCH", "/v1/buildings/<building_id>"): Scoped(
        "building",
        building_manage(200),
        at_building,
        "own",
        body=lambda ctx, tenant, label, aim: {"name": ctx.unique("Renamed "), "default_base_price_clp": 7777},
        snapshot=snap("SELECT name, default_base_price_clp, updated_at FROM buildings WHERE id = %s", "building_id"),
        check=check_building,
    ),
    ("GET", "/v1/buildings/<building_id>/units"): Scoped(
        "building", BUILDING_VIEW, at_building, "world", query="?limit=200", check=check_items_of("units")
    ),
    ("POST", "/v1/buildings/<building_id>/units"): Scoped(
        "building",
        building_manage(201),
        at_building,
        "own",
        body=lambda ctx, tenant, label, aim: {"unit_number": ctx.unique("U"), "floor": 3},
        snapshot=snap("SELECT count(*) FROM units WHERE building_id = %s", "building_id"),
        check=check_created_in_building,
    ),
    ("GET", "/v1/buildings/<building_id>/spots"): Scoped(
        "building", BUILDING_VIEW, at_building, "world", query="?limit=200", check=check_items_of("spots")
    ),
    ("POST", "/v1/buildings/<building_id>/spots"): Scoped(
        "building",
        building_manage(201),
        at_building,
        "own",
        body=lambda ctx, tenant, label, aim: {"spot_number": ctx.unique("S"), "description": "matrix"},
        snapshot=snap("SELECT count(*) FROM visitor_spots WHERE building_id = %s", "building_id"),
        check=check_created_in_building,
    ),
    ("GET", "/v1/buildings/<building_id>/stats"): Scoped(
        "building", BUILDING_STAFF_READ, at_building, "world", query=world_window, check=check_building_stats
    ),
    ("GET", "/v1/buildings/<building_id>/availability"): Scoped(
        "building", BUILDING_VIEW, at_building, "world", query=world_window, check=check_availability
    ),
    ("POST", "/v1/buildings/<building_id>/availability/generate"): Scoped(
        "building",
        building_manage(202),
        at_building,
        "own",
        snapshot=snap("SELECT count(*) FROM jobs WHERE type = 'availability.generate'"),
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
