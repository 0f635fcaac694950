"""``GET /v1/audit-logs``: scoped (platform_admin all, org_admin its organization's), filtered, paginated
newest first by keyset, never an ip to an organization, scrubbed rows marked and empty of PII."""

from __future__ import annotations

import json

import pytest

from tests.support.world import make_residents

pytestmark = pytest.mark.slow


def audit(stack, headers, **query):
    response = stack.client().get("/v1/audit-logs", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_platform_admin_sees_everything_and_org_admin_only_its_organizations_entities(worker, world):
    a, b = world.a, world.b
    mine = audit(worker, a.headers["org_admin"], entity_type="organization", entity_id=a.organization_id)
    assert [row["action"] for row in mine["items"]][-1] == "organization.created"
    assert all(row["entity_id"] == a.organization_id for row in mine["items"])
    assert audit(worker, b.headers["org_admin"], entity_type="organization", entity_id=a.organization_id)["items"] == []
    # Everything B's admin can see is B's: no id of A's organization, buildings or people.
    everything_b_sees = json.dumps(audit(worker, b.headers["org_admin"], limit=200))
    for secret in (a.organization_id, *a.buildings.values(), *a.residents.values(), a.people["resident"]["email"]):
        assert secret not in everything_b_sees
    # Rows about A's building reach A's admin, not B's; the platform admin sees both.
    building = a.buildings["A1"]
    assert audit(worker, a.headers["org_admin"], entity_type="building", entity_id=building)["items"]
    assert audit(worker, b.headers["org_admin"], entity_type="building", entity_id=building)["items"] == []
    assert audit(worker, world.admin, entity_type="building", entity_id=building)["items"]
    # Only platform_admin and org_admin read the trail.
    for refused in (a.headers["building_admin"], a.headers["concierge"], a.headers["resident"], world.support):
        response = worker.client().get("/v1/audit-logs", headers=refused)
        assert response.status_code == 403 and response.get_json()["type"] == "/problems/forbidden"
    assert worker.client().get("/v1/audit-logs").status_code == 401


def test_ips_are_shown_to_the_platform_only(worker, world):
    (person,) = make_residents(worker, world.a.buildings["A1"], 1)
    worker.login(person)
    query = {"actor_id": person["id"], "action": "auth.login"}
    as_platform = audit(worker, world.admin, **query)["items"]
    assert as_platform and as_platform[0]["ip"]
    user_rows = audit(worker, world.a.headers["org_admin"], entity_type="user", entity_id=person["id"])["items"]
    assert user_rows and all(row["ip"] is None for row in user_rows)


def test_filters_and_keyset_pagination_newest_first(worker, world):
    (person,) = make_residents(worker, world.a.buildings["A1"], 1)
    for _ in range(5):
        worker.login(person)
    seen, cursor = [], None
    while True:
        query = {"actor_id": person["id"], "action": "auth.login", "limit": 2}
        page = audit(worker, world.admin, **query, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len({row["id"] for row in seen}) == 5
    assert {(row["actor_id"], row["action"]) for row in seen} == {(person["id"], "auth.login")}
    instants = [(row["occurred_at"], int(row["id"])) for row in seen]
    assert instants == sorted(instants, reverse=True)
    newest = seen[0]["occurred_at"]
    assert audit(worker, world.admin, actor_id=person["id"], action="auth.login", **{"from": newest})["items"]
    assert audit(worker, world.admin, actor_id=person["id"], to="2000-01-01")["items"] == []
    bad = worker.client().get("/v1/audit-logs?cursor=WyIxIl0", headers=world.admin)  # ["1"]: wrong shape
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["pointer"] == "/cursor"


def test_rows_of_an_anonymized_user_read_scrubbed_without_pii(worker, world):
    (person,) = make_residents(worker, world.a.buildings["A1"], 1)
    worker.login(person)
    failed = worker.client().post("/v1/auth/login", json={"email": person["email"], "password": "wrong-password!"})
    assert failed.status_code == 401
    accepted = worker.client().post(
        "/v1/admin/anonymizations", json={"user_ids": [person["id"]]}, headers=world.a.headers["org_admin"]
    )
    assert worker.wait_job(world.a.headers["org_admin"], accepted.get_json()["job_id"])["status"] == "succeeded"
    theirs = audit(worker, world.admin, actor_id=person["id"], limit=200)["items"]
    assert theirs and all(row["scrubbed"] and row["ip"] is None for row in theirs)
    about = audit(worker, world.a.headers["org_admin"], entity_type="user", entity_id=person["id"])["items"]
    assert {row["action"] for row in about} >= {"user.anonymized", "auth.login_failed", "user.created"}
    assert all(row["scrubbed"] for row in about if row["action"] != "user.anonymized")
    assert all(value is None for row in about if row["scrubbed"] for value in row["metadata"].values())
    assert person["email"].lower() not in json.dumps(theirs + about).lower()
