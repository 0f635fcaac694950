"""The isolation matrix for yield management: pricing rules, quotes and recalculations.

The harness (callers, profiles, aims, checks, the run of a case) is tests/support/isolation.py.
"""

from __future__ import annotations

import uuid

from tests.support.isolation import (
    BUILDING_ADMIN,
    BUILDING_STAFF_READ,
    BUILDING_VIEW,
    ORG_ADMIN,
    PLATFORM_ADMIN,
    Ctx,
    Job,
    Matrix,
    Scoped,
    at_building,
    at_building_ref,
    at_fresh_rule,
    at_world_block,
    building_manage,
    check_created_in_building,
    check_quote,
    check_rules_of_building,
    parametrize,
    rule_body,
    run_case,
    snap,
)

MATRIX: Matrix = {
    ("POST", "/v1/buildings/<building_id>/pricing-rules"): Scoped(
        "building",
        building_manage(201),
        at_building,
        "own",
        body=lambda ctx, tenant, label, aim: rule_body(ctx),
        snapshot=snap("SELECT count(*) FROM pricing_rules WHERE building_id = %s", "building_id"),
        check=check_created_in_building,
    ),
    ("GET", "/v1/buildings/<building_id>/pricing-rules"): Scoped(
        "building", BUILDING_STAFF_READ, at_building, "world", query="?limit=200", check=check_rules_of_building
    ),
    ("DELETE", "/v1/pricing-rules/<rule_id>"): Scoped(
        "building",
        building_manage(204),
        at_fresh_rule,
        "own",
        snapshot=snap("SELECT is_active FROM pricing_rules WHERE id = %s", "rule_id"),
    ),
    ("GET", "/v1/availability-blocks/<block_id>/quote"): Scoped(
        "building", BUILDING_VIEW, at_world_block, "world", check=check_quote
    ),
    ("POST", "/v1/pricing/recalculations"): Scoped(
        "building",
        {**building_manage(202), ORG_ADMIN: Job(), BUILDING_ADMIN: Job(), PLATFORM_ADMIN: Job()},
        at_building_ref,
        "own",
        body=lambda ctx, tenant, label, aim: {"building_id": aim.ref("building_id")},
        missing_body=lambda ctx: {"building_id": str(uuid.uuid4())},
        snapshot=snap("SELECT count(*) FROM jobs WHERE type = 'pricing.recalculate'"),
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
