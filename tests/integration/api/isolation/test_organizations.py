"""The isolation matrix for an organization, its buildings, its stats and its members.

The harness (callers, profiles, aims, checks, the run of a case) is tests/support/isolation.py.
"""

from __future__ import annotations

from tests.support.isolation import (
    CONCIERGE,
    ORGANIZATION_VIEW,
    PROBLEM,
    Ctx,
    Matrix,
    Scoped,
    at_organization,
    check_organization,
    check_organization_buildings,
    check_organization_stats,
    organization_manage,
    parametrize,
    run_case,
    snap_org,
    world_window,
)

MATRIX: Matrix = {
    ("GET", "/v1/organizations/<organization_id>"): Scoped(
        "organization", ORGANIZATION_VIEW, at_organization, "world", check=check_organization
    ),
    ("GET", "/v1/organizations/<organization_id>/buildings"): Scoped(
        "organization", ORGANIZATION_VIEW, at_organization, "world", check=check_organization_buildings
    ),
    ("GET", "/v1/organizations/<organization_id>/stats"): Scoped(
        "organization",
        # A concierge reads no building's stats: an empty sum, or a refusal; both leak nothing.
        {**ORGANIZATION_VIEW, CONCIERGE: (200, 403)},
        at_organization,
        "world",
        query=world_window,
        check=check_organization_stats,
    ),
    ("POST", "/v1/organizations/<organization_id>/members"): Scoped(
        "organization",
        organization_manage(201),
        at_organization,
        "own",
        body=lambda ctx, tenant, label, aim: {
            "email": f"{ctx.unique('member-')}@staff.test",
            "password": "staff-password-123",
            "role": "concierge",
            "building_ids": [tenant.buildings[label]],
        },
        snapshot=snap_org("SELECT count(*) FROM memberships WHERE organization_id = %s"),
    ),
    ("POST", "/v1/organizations/<organization_id>/buildings"): Scoped(
        "organization",
        organization_manage(201),
        at_organization,
        "own",
        body=lambda ctx, tenant, label, aim: {
            "name": ctx.unique("Matrix building "),
            "address": "Calle Matriz 1",
            "contact_email": "ops@example.test",
        },
        snapshot=snap_org("SELECT count(*) FROM buildings WHERE organization_id = %s"),
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)


# --- the tenancy acceptance statements, spelled out --------------------------------------------------


def test_org_admin_with_two_buildings_sees_stats_for_both_and_the_other_admin_neither(ctx: Ctx):
    a, b = ctx.world.a, ctx.world.b
    mine = ctx.call("GET", f"/v1/organizations/{a.organization_id}/stats", a.headers["org_admin"])
    assert mine.status_code == 200
    assert {a.buildings["A1"], a.buildings["A2"]} <= {row["building_id"] for row in mine.get_json()["buildings"]}
    for target, caller in ((a, b.headers["org_admin"]), (b, a.headers["org_admin"])):
        theirs = ctx.call("GET", f"/v1/organizations/{target.organization_id}/stats", caller)
        assert theirs.status_code == 404 and theirs.mimetype == PROBLEM
        assert ctx.names[target.organization_id] not in theirs.get_data(as_text=True)


def test_listing_another_organizations_buildings_is_404_both_ways(ctx: Ctx):
    a, b = ctx.world.a, ctx.world.b
    for target, caller in ((b, a.headers["org_admin"]), (a, b.headers["org_admin"])):
        response = ctx.call("GET", f"/v1/organizations/{target.organization_id}/buildings", caller)
        assert response.status_code == 404 and response.mimetype == PROBLEM
        text = response.get_data(as_text=True)
        for building_id in target.buildings.values():
            assert building_id not in text and ctx.names[building_id] not in text


def test_building_admin_lists_only_their_building(ctx: Ctx):
    a = ctx.world.a
    response = ctx.call("GET", f"/v1/organizations/{a.organization_id}/buildings", a.headers["building_admin"])
    assert response.status_code == 200
    assert [item["id"] for item in response.get_json()["items"]] == [a.buildings["A1"]]
