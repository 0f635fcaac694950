"""The isolation matrix for the blocklist: adding, listing and lifting entries (harness: tests/support/isolation.py)."""

from __future__ import annotations

import uuid

from tests.support.isolation import (
    SUPPORT,
    Ctx,
    Matrix,
    Scoped,
    at_building_ref,
    at_building_ref_with_entries,
    at_fresh_entry,
    building_manage,
    check_blocklist_of_building,
    check_created_in_building,
    parametrize,
    plate_ban,
    run_case,
    snap,
)

MATRIX: Matrix = {
    ("POST", "/v1/blocklist"): Scoped(
        "building",
        building_manage(201),
        at_building_ref,
        "own",
        body=lambda ctx, tenant, label, aim: plate_ban(ctx, aim.ref("building_id")),
        missing_body=lambda ctx: plate_ban(ctx, str(uuid.uuid4())),
        snapshot=snap("SELECT count(*) FROM blocklist_entries WHERE building_id = %s", "building_id"),
        check=check_created_in_building,
    ),
    ("GET", "/v1/blocklist"): Scoped(
        "building",
        # support reads everything, changes nothing; a concierge lists nothing (403, never a value)
        {**building_manage(200), SUPPORT: 200},
        at_building_ref_with_entries,
        "world",
        query=lambda ctx, aim: f"?building_id={aim.ref('building_id')}&limit=200",
        check=check_blocklist_of_building,
    ),
    ("DELETE", "/v1/blocklist/<entry_id>"): Scoped(
        "building",
        building_manage(204),
        at_fresh_entry,
        "own",
        snapshot=snap("SELECT is_active FROM blocklist_entries WHERE id = %s", "entry_id"),
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
