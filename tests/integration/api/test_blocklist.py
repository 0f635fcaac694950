"""Bans: normalized matching, scopes (global, organization, building), enforcement on booking.

Bans outlive a test, so they target organizations of this module's own (``own`` and ``other``),
never the shared world, and global bans use plates nobody else books.

Who sees which entries (README "Yield management and the blocklist"): platform staff see every
entry with its value; an org_admin their organization's entries and those of all its buildings; a
building_admin the organization-wide entries of their organization and those of their listed
buildings; nobody else lists the blocklist (403), and no organization staff ever sees a global entry.
"""

import uuid

import pytest

from tests.support.world import build_tenant, make_residents, new_block, new_spot

pytestmark = pytest.mark.slow


class Banned:
    """This module's two operators, shaped like the world's: ``a`` (buildings A1, A2) and ``b`` (B1)."""

    def __init__(self, stack, admin, support):
        self.admin, self.support = admin, support
        self.a = build_tenant(stack, admin, f"Ban org A {uuid.uuid4().hex[:6]}", ["A1", "A2"])
        self.b = build_tenant(stack, admin, f"Ban org B {uuid.uuid4().hex[:6]}", ["B1"])


@pytest.fixture(scope="module")
def world(worker, world):
    """Overrides the shared ``world`` in this module (built with the shared world's platform admin)."""
    return Banned(worker, world.admin, world.support)


def ban(stack, headers, **body):
    response = stack.client().post("/v1/blocklist", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def attempt(stack, world, building_label, resident_headers, plate="ZZ9999", tenant=None):
    tenant = tenant or world.a
    spot = new_spot(stack, world.admin, tenant.buildings[building_label])
    block = new_block(
        stack, world.admin, spot, starts_in_minutes=60 * 24 * 5 + len(plate) * 37 + uuid.uuid4().int % 5000
    )
    accepted = stack.client().post(
        "/v1/bookings",
        json={"availability_block_id": block, "visitor_name": "Visita", "vehicle_plate": plate},
        headers=resident_headers,
    )
    assert accepted.status_code == 202, accepted.get_json()
    job = stack.wait_job(resident_headers, accepted.get_json()["job_id"])
    live = stack.sql("SELECT count(*) FROM bookings WHERE block_id = %s AND status <> 'cancelled'", (block,))[0][0]
    return job, live


def test_a_plate_banned_as_ab_1234_blocks_a_booking_for_AB1234(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    headers = worker.login(resident)
    ban(
        worker,
        a.headers["building_admin"],
        type="plate",
        value="ab-1234",
        building_id=a.buildings["A1"],
        reason="drove through the gate",
    )
    job, live = attempt(worker, world, "A1", headers, plate="AB1234")
    assert job["status"] == "failed" and job["error"]["type"] == "/problems/blocked"
    assert "gate" not in job["error"]["detail"]  # the reason is never shown to the resident
    assert live == 0
    ok, live = attempt(worker, world, "A1", headers, plate="AB1235")
    assert ok["status"] == "succeeded" and live == 1


def test_a_rut_banned_with_dots_blocks_the_same_rut_without(worker, world):
    a = world.a
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    with worker.context():
        from app.extensions import db
        from app.models import Resident

        stored = db.session.query(Resident).filter_by(user_id=uuid.UUID(resident["id"])).one().rut
    body, check = stored.split("-")
    dotted = f"{int(body):,}".replace(",", ".") + f"-{check.lower()}"
    ban(worker, a.headers["org_admin"], type="rut", value=dotted, organization_id=a.organization_id)
    job, live = attempt(worker, world, "A1", worker.login(resident))
    assert job["error"]["type"] == "/problems/blocked" and live == 0


def test_a_global_ban_blocks_everywhere_and_a_building_ban_only_there(worker, world):
    a, b = world.a, world.b
    (in_a,) = make_residents(worker, a.buildings["A1"], 1)
    (in_b,) = make_residents(worker, b.buildings["B1"], 1)
    h_a, h_b = worker.login(in_a), worker.login(in_b)
    plate = "GL" + uuid.uuid4().hex[:4].upper()
    ban(worker, world.admin, type="plate", value=plate)
    for headers, label, tenant in ((h_a, "A1", a), (h_b, "B1", b)):
        job, live = attempt(worker, world, label, headers, plate=plate, tenant=tenant)
        assert job["error"]["type"] == "/problems/blocked" and live == 0
    local = "BL" + uuid.uuid4().hex[:4].upper()
    ban(worker, b.headers["building_admin"], type="plate", value=local, building_id=b.buildings["B1"])
    job_b, _ = attempt(worker, world, "B1", h_b, plate=local, tenant=b)
    job_a, _ = attempt(worker, world, "A1", h_a, plate=local, tenant=a)
    assert job_b["error"]["type"] == "/problems/blocked"
    assert job_a["status"] == "succeeded"


def test_the_residents_email_and_phone_are_checked(worker, world):
    a = world.a
    first, second = make_residents(worker, a.buildings["A1"], 2)
    ban(
        worker,
        a.headers["org_admin"],
        type="email",
        value=f"  {first['email'].upper()} ",
        organization_id=a.organization_id,
    )
    job, _ = attempt(worker, world, "A1", worker.login(first))
    assert job["error"]["type"] == "/problems/blocked"
    worker.sql("UPDATE residents SET phone_bidx = NULL WHERE user_id = %s", (second["id"],))  # no phone: allowed
    job, _ = attempt(worker, world, "A1", worker.login(second))
    assert job["status"] == "succeeded"


def test_only_platform_admins_ban_globally_and_bad_values_are_refused(stack, world):
    a = world.a
    refused = stack.client().post(
        "/v1/blocklist", json={"type": "plate", "value": "AB1234"}, headers=a.headers["org_admin"]
    )
    assert refused.status_code == 403
    for kind, value in [("rut", "12.345.678-9"), ("phone", "12"), ("plate", "a"), ("ip", "999.1.1.1"), ("email", "x")]:
        response = stack.client().post(
            "/v1/blocklist", json={"type": kind, "value": value, "building_id": a.buildings["A1"]}, headers=world.admin
        )
        assert response.status_code == 422, (kind, value, response.get_json())
        assert response.get_json()["errors"][0]["pointer"] == "/value"
    both = stack.client().post(
        "/v1/blocklist",
        json={
            "type": "plate",
            "value": "AB1234",
            "building_id": a.buildings["A1"],
            "organization_id": a.organization_id,
        },
        headers=world.admin,
    )
    assert both.status_code == 422


def test_lists_show_what_applies_and_deleting_lifts_the_ban(worker, world):
    a, b = world.a, world.b
    plate = "DL" + uuid.uuid4().hex[:4].upper()
    entry = ban(worker, a.headers["building_admin"], type="plate", value=plate, building_id=a.buildings["A1"])
    listed = worker.client().get(
        f"/v1/blocklist?building_id={a.buildings['A1']}&limit=200", headers=a.headers["org_admin"]
    )
    assert entry["id"] in {e["id"] for e in listed.get_json()["items"]}
    assert entry["value"] == plate
    theirs = worker.client().get("/v1/blocklist?limit=200", headers=b.headers["org_admin"]).get_json()["items"]
    assert entry["id"] not in {e["id"] for e in theirs}
    assert worker.client().delete(f"/v1/blocklist/{entry['id']}", headers=b.headers["org_admin"]).status_code == 404
    assert worker.client().delete(f"/v1/blocklist/{entry['id']}", headers=a.headers["concierge"]).status_code == 403
    assert (
        worker.client().delete(f"/v1/blocklist/{entry['id']}", headers=a.headers["building_admin"]).status_code == 204
    )
    (resident,) = make_residents(worker, a.buildings["A1"], 1)
    job, live = attempt(worker, world, "A1", worker.login(resident), plate=plate)
    assert job["status"] == "succeeded" and live == 1
    actions = {r[0] for r in worker.sql("SELECT action FROM audit_logs WHERE entity_id = %s", (entry["id"],))}
    assert actions == {"blocklist.added", "blocklist.removed"}


def test_banned_values_are_not_stored_in_plaintext(stack, world):
    a = world.a
    values = {"email": "banned.person@example.test", "phone": "+56911223344", "rut": "11.111.111-1"}
    for kind, value in values.items():
        ban(stack, world.admin, type=kind, value=value, building_id=a.buildings["A2"], reason=f"reason {kind}")
    dump = "".join(r[0] for r in stack.sql("SELECT row_to_json(blocklist_entries)::text FROM blocklist_entries"))
    for needle in ("banned.person", "911223344", "11111111", "11.111.111", "reason email"):
        assert needle not in dump


# --- who sees which entries -------------------------------------------------------------------


def entries(stack, headers, query=""):
    """Every entry the caller may list (all pages), by id; asserts each page answers 200."""
    found, cursor = {}, None
    while True:
        path = f"/v1/blocklist?limit=200{query}" + (f"&cursor={cursor}" if cursor else "")
        response = stack.client().get(path, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        found |= {item["id"]: item for item in body["items"]}
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def new_plate(prefix):
    return prefix + uuid.uuid4().hex[:4].upper()


def test_organization_staff_never_see_a_global_entry_nor_its_value(worker, world):
    a = world.a
    plate = new_plate("GV")
    entry = ban(worker, world.admin, type="plate", value=plate, reason="global reason")
    for role in ("org_admin", "building_admin"):
        for query in ("", f"&building_id={a.buildings['A1']}"):
            response = worker.client().get(f"/v1/blocklist?limit=200{query}", headers=a.headers[role])
            assert response.status_code == 200, (role, response.get_json())
            text = response.get_data(as_text=True)
            assert entry["id"] not in text and plate not in text and "global reason" not in text, (role, query)
            assert {item["scope"] for item in response.get_json()["items"]} <= {"organization", "building"}
    for headers in (world.admin, world.support):  # platform staff see it, value and reason included
        for query in ("", f"&building_id={a.buildings['A1']}"):
            seen = entries(worker, headers, query)[entry["id"]]
            assert (seen["scope"], seen["value"], seen["reason"]) == ("global", plate, "global reason")


def test_a_concierge_lists_nothing_and_sees_no_value(worker, world):
    a = world.a
    values = [
        ban(worker, world.admin, type="plate", value=new_plate("CG"))["value"],
        ban(worker, a.headers["org_admin"], type="plate", value=new_plate("CO"), organization_id=a.organization_id)[
            "value"
        ],
        ban(worker, a.headers["building_admin"], type="plate", value=new_plate("CB"), building_id=a.buildings["A1"])[
            "value"
        ],
    ]
    for query in ("", f"&building_id={a.buildings['A1']}"):
        response = worker.client().get(f"/v1/blocklist?limit=200{query}", headers=a.headers["concierge"])
        assert response.status_code == 403, (query, response.get_json())
        assert response.get_json()["type"] == "/problems/forbidden"
        text = response.get_data(as_text=True)
        assert not [value for value in values if value in text], text


def test_organization_staff_see_their_organizations_and_their_buildings_entries(worker, world):
    a, b = world.a, world.b
    org_wide = ban(
        worker, a.headers["org_admin"], type="plate", value=new_plate("OW"), organization_id=a.organization_id
    )
    in_a1 = ban(worker, a.headers["building_admin"], type="plate", value=new_plate("B1"), building_id=a.buildings["A1"])
    in_a2 = ban(worker, a.headers["org_admin"], type="plate", value=new_plate("B2"), building_id=a.buildings["A2"])
    theirs = ban(worker, b.headers["org_admin"], type="plate", value=new_plate("TH"), organization_id=b.organization_id)
    mine = {e["id"] for e in (org_wide, in_a1, in_a2)}

    org_admin = entries(worker, a.headers["org_admin"])
    assert mine <= org_admin.keys() and theirs["id"] not in org_admin
    assert org_admin[in_a2["id"]]["value"] == in_a2["value"], "managers see the values of what they may see"
    # a building_admin of A1: the organization-wide entries (they apply to A1) and A1's, not A2's
    building_admin = entries(worker, a.headers["building_admin"])
    assert {org_wide["id"], in_a1["id"]} <= building_admin.keys()
    assert in_a2["id"] not in building_admin and theirs["id"] not in building_admin
    assert {e["building_id"] for e in building_admin.values()} <= {None, a.buildings["A1"]}
    assert {e["organization_id"] for e in building_admin.values()} <= {None, a.organization_id}
    other = entries(worker, b.headers["org_admin"])
    assert theirs["id"] in other and not mine & other.keys()


def test_a_global_entry_is_not_found_for_organization_staff(worker, world):
    a = world.a
    entry = ban(worker, world.admin, type="plate", value=new_plate("GD"))
    for role in ("org_admin", "building_admin", "concierge"):
        response = worker.client().delete(f"/v1/blocklist/{entry['id']}", headers=a.headers[role])
        assert response.status_code == 404, (role, response.get_json())
        missing = worker.client().delete(f"/v1/blocklist/{uuid.uuid4()}", headers=a.headers[role])
        assert {k: response.get_json()[k] for k in ("type", "detail")} == {
            k: missing.get_json()[k] for k in ("type", "detail")
        }
    assert worker.client().delete(f"/v1/blocklist/{entry['id']}", headers=world.support).status_code == 403
    assert worker.sql("SELECT is_active FROM blocklist_entries WHERE id = %s", (entry["id"],)) == [(True,)]
    assert worker.client().delete(f"/v1/blocklist/{entry['id']}", headers=world.admin).status_code == 204


def support_reads(stack, support_id):
    return stack.sql(
        "SELECT entity_id, metadata FROM audit_logs WHERE action = 'support.read' AND entity_type = 'blocklist'"
        " AND actor_id = %s ORDER BY id",
        (support_id,),
    )


def test_a_support_list_of_the_blocklist_is_audited_with_what_it_showed(worker, world):
    a = world.a
    support_id = worker.client().get("/v1/me", headers=world.support).get_json()["id"]
    entry = ban(worker, a.headers["building_admin"], type="plate", value=new_plate("SR"), building_id=a.buildings["A1"])
    before = len(support_reads(worker, support_id))
    listed = worker.client().get(f"/v1/blocklist?building_id={a.buildings['A1']}&limit=200", headers=world.support)
    assert listed.status_code == 200
    shown = [item["id"] for item in listed.get_json()["items"]]
    assert entry["id"] in shown
    everything = worker.client().get("/v1/blocklist?limit=200", headers=world.support)
    assert everything.status_code == 200
    rows = support_reads(worker, support_id)
    assert len(rows) == before + 2
    (by_building, by_building_details), (unfiltered, unfiltered_details) = rows[-2:]
    assert by_building == a.buildings["A1"] and by_building_details["ids"] == shown
    assert unfiltered is None and unfiltered_details["ids"] == [i["id"] for i in everything.get_json()["items"]]
    count = "SELECT count(*) FROM audit_logs WHERE action = 'support.read' AND entity_type = 'blocklist'"
    (total,) = worker.sql(count)
    assert worker.client().get("/v1/blocklist", headers=a.headers["org_admin"]).status_code == 200
    assert worker.sql(count) == [total], "a manager's list is no support read"
