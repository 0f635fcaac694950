"""Staff management by an organization's admin: members, removing a membership (effective on the next
request; never the last org_admin), banning its own residents (another organization's: 404)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.world import add_staff, build_tenant, make_residents

pytestmark = pytest.mark.slow


@pytest.fixture
def tenant(worker, world):
    return build_tenant(worker, world.admin, f"Org Staff {uuid.uuid4().hex[:6]}", ["S1"])


def members(stack, headers, organization_id):
    return stack.client().get(f"/v1/organizations/{organization_id}/members?limit=200", headers=headers)


def test_the_org_admin_lists_its_staff_and_nobody_else_does(worker, world, tenant):
    listed = members(worker, tenant.headers["org_admin"], tenant.organization_id)
    assert listed.status_code == 200, listed.get_json()
    by_role = {item["role"]: item for item in listed.get_json()["items"]}
    assert set(by_role) == {"org_admin", "building_admin", "concierge"}
    assert by_role["org_admin"]["email"] == tenant.people["org_admin"]["email"].lower()
    assert by_role["org_admin"]["building_ids"] == []
    assert by_role["concierge"]["building_ids"] == [tenant.buildings["S1"]]
    assert by_role["concierge"]["user_id"] == tenant.people["concierge"]["id"]
    assert members(worker, world.admin, tenant.organization_id).status_code == 200
    assert members(worker, world.b.headers["org_admin"], tenant.organization_id).status_code == 404
    assert members(worker, tenant.headers["building_admin"], tenant.organization_id).status_code == 403
    assert members(worker, tenant.headers["resident"], tenant.organization_id).status_code == 404


def test_a_removed_membership_stops_counting_on_the_next_request(worker, world, tenant):
    concierge = tenant.headers["concierge"]
    building = f"/v1/buildings/{tenant.buildings['S1']}"
    assert worker.client().get(building, headers=concierge).status_code == 200
    (membership,) = [
        item["membership_id"]
        for item in members(worker, tenant.headers["org_admin"], tenant.organization_id).get_json()["items"]
        if item["role"] == "concierge"
    ]
    other = worker.client().delete(f"/v1/memberships/{membership}", headers=world.b.headers["org_admin"])
    assert other.status_code == 404
    assert worker.client().get(building, headers=concierge).status_code == 200
    removed = worker.client().delete(f"/v1/memberships/{membership}", headers=tenant.headers["org_admin"])
    assert removed.status_code == 204
    after = worker.client().get(building, headers=concierge)  # the same session, its very next request
    assert after.status_code == 404
    again = worker.client().delete(f"/v1/memberships/{membership}", headers=tenant.headers["org_admin"])
    assert again.status_code == 404
    assert worker.sql(
        "SELECT count(*) FROM audit_logs WHERE action = 'membership.removed' AND entity_id = %s", (membership,)
    ) == [(1,)]


def test_the_last_org_admin_cannot_be_removed(worker, world, tenant):
    org_admin = tenant.headers["org_admin"]
    (own,) = [
        item["membership_id"]
        for item in members(worker, org_admin, tenant.organization_id).get_json()["items"]
        if item["role"] == "org_admin"
    ]
    refused = worker.client().delete(f"/v1/memberships/{own}", headers=org_admin)
    assert refused.status_code == 409 and refused.get_json()["type"] == "/problems/conflict"
    assert worker.sql("SELECT count(*) FROM memberships WHERE id = %s", (own,)) == [(1,)]
    second = add_staff(worker, world.admin, tenant.organization_id, "org_admin", [])
    second_headers = worker.login(second)
    assert worker.client().delete(f"/v1/memberships/{own}", headers=second_headers).status_code == 204
    assert members(worker, org_admin, tenant.organization_id).status_code == 404  # no longer theirs
    listed = members(worker, second_headers, tenant.organization_id).get_json()["items"]
    (last,) = [item["membership_id"] for item in listed if item["role"] == "org_admin"]
    assert worker.client().delete(f"/v1/memberships/{last}", headers=world.admin).status_code == 409


def test_an_org_admin_bans_its_own_residents_and_gets_404_for_anyone_elses(worker, world, tenant):
    (mine,) = make_residents(worker, tenant.buildings["S1"], 1)
    (theirs,) = make_residents(worker, world.a.buildings["A1"], 1)
    session = worker.login(mine)
    org_admin = tenant.headers["org_admin"]
    banned = worker.client().post(f"/v1/admin/users/{mine['id']}/ban", json={}, headers=org_admin)
    assert banned.status_code == 200 and banned.get_json()["banned"] is True
    assert worker.client().get("/v1/me", headers=session).status_code == 401
    other = worker.client().post(f"/v1/admin/users/{theirs['id']}/ban", json={}, headers=org_admin)
    assert other.status_code == 404
    unknown = worker.client().post(f"/v1/admin/users/{uuid.uuid4()}/ban", json={}, headers=org_admin)
    assert unknown.get_json()["detail"] == other.get_json()["detail"]
    staff_user = worker.client().post(
        f"/v1/admin/users/{world.a.people['concierge']['id']}/ban", json={}, headers=org_admin
    )
    assert staff_user.status_code == 404  # staff and platform accounts are the platform's to ban
    assert worker.sql("SELECT banned_at FROM users WHERE id = %s", (theirs["id"],)) == [(None,)]
    building_admin = worker.client().post(
        f"/v1/admin/users/{mine['id']}/unban", json={}, headers=tenant.headers["building_admin"]
    )
    assert building_admin.status_code == 403
    lifted = worker.client().post(f"/v1/admin/users/{mine['id']}/unban", json={}, headers=org_admin)
    assert lifted.status_code == 200 and lifted.get_json()["banned"] is False
