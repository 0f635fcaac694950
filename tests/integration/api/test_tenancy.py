"""Organizations, buildings, units, spots, blocks and residents through the API.

Tests that change anything do it in an organization of their own (``site``), built through the
API by the world's platform admin; the shared ``world`` is only read.

Who may call what, in scope and out of it (401/403/404, and that a refusal changes nothing), is the
isolation matrix's (tests/integration/api/isolation/); these tests are about what the endpoints do:
validation, defaults, conflicts, audit rows, search, stats figures, and callers the matrix has no
row for (a user with no role, unknown ids as platform staff).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.domain.identity import rut_check_digit
from tests.integration.api.test_query_counts import counted
from tests.support.world import add_staff, enroll_mfa, make_residents


def test_the_world_builds(world):
    a = world.a
    me = world.call("get", "/v1/me", a.headers["building_admin"]).get_json()
    assert me["memberships"][0]["role"] == "building_admin"
    assert me["memberships"][0]["building_ids"] == [a.buildings["A1"]]
    resident = world.call("get", "/v1/me", a.headers["resident"]).get_json()["resident"]
    assert resident["status"] == "verified" and resident["unit_number"] == "101"
    assert resident["rut"].endswith(a.people["resident"]["rut"][-1])
    assert resident["phone"] == "+56912345678"


# --- helpers ----------------------------------------------------------------------------------


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def assert_problem(response: Any, status: int, slug: str, pointer: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_json())
    problem = response.get_json()
    assert problem["type"] == f"/problems/{slug}", problem
    if pointer is not None:
        assert pointer in [e["pointer"] for e in problem.get("errors") or []], problem
    return problem


@dataclass
class Site:
    """An organization of our own with two buildings (Main, Annex) and staff of every role."""

    stack: Any
    admin: dict[str, str]
    organization_id: str
    main: str
    annex: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)

    def call(self, method: str, path: str, role: str | None = None, **kwargs: Any) -> Any:
        headers = self.admin if role == "platform_admin" else (self.headers[role] if role else {})
        return getattr(self.stack.client(), method)(path, headers=headers, **kwargs)

    def new_building(self, role: str = "org_admin", **fields: Any) -> dict[str, Any]:
        body = {"name": f"B {uuid.uuid4().hex[:6]}", "address": "Av. Siempre Viva 742", "contact_email": "ops@x.test"}
        return _ok(
            self.call("post", f"/v1/organizations/{self.organization_id}/buildings", role, json=body | fields), 201
        )

    def new_spot(self, building_id: str, number: str | None = None) -> dict[str, Any]:
        body = {"spot_number": number or f"V{uuid.uuid4().hex[:5]}"}
        return _ok(self.call("post", f"/v1/buildings/{building_id}/spots", "org_admin", json=body), 201)

    def new_block(self, spot_id: str, at: datetime, /, hours: int = 11, **extra: Any) -> Any:
        body = {
            "start": iso(at),
            "end": iso(at + timedelta(hours=hours)),
            "duration": "23h" if hours == 23 else "11h",
            "base_price_clp": 5000,
        }
        return self.call("post", f"/v1/spots/{spot_id}/blocks", "org_admin", json=body | extra)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soon(days: int = 2, hours: int = 0) -> datetime:
    """A whole hour ``days`` days ahead (blocks must start in the future)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days, hours=hours)


@pytest.fixture(scope="module")
def site(world) -> Site:
    stack, admin = world.stack, world.admin
    org = _ok(
        stack.client().post("/v1/organizations", json={"name": f"Tenancy {uuid.uuid4().hex[:6]}"}, headers=admin), 201
    )
    result = Site(stack, admin, org["id"], "", "")
    org_admin = add_staff(stack, admin, org["id"], "org_admin", [])
    result.people["org_admin"], result.headers["org_admin"] = org_admin, stack.login(org_admin)
    result.main = result.new_building(name="Main")["id"]
    result.annex = result.new_building(name="Annex")["id"]
    for label, role, buildings in (
        ("building_admin", "building_admin", [result.main]),
        ("concierge", "concierge", [result.main]),
    ):
        person = add_staff(stack, admin, org["id"], role, buildings)
        result.people[label], result.headers[label] = person, stack.login(person)
    support = stack.create_user(role="support")
    result.people["support"], result.headers["support"] = support, stack.login(support)
    stranger = stack.create_user()
    result.people["stranger"], result.headers["stranger"] = stranger, stack.login(stranger)
    return result


def audit_actions(stack: Any, entity_id: str, action: str) -> list[tuple[Any, ...]]:
    return stack.sql(
        "SELECT actor_id::text, metadata FROM audit_logs WHERE entity_id = %s AND action = %s ORDER BY id",
        (entity_id, action),
    )


# --- organizations ----------------------------------------------------------------------------


def test_a_platform_admin_creates_an_organization_and_reads_it(site):
    created = _ok(site.call("post", "/v1/organizations", "platform_admin", json={"name": "  Inmobiliaria Sur  "}), 201)
    assert set(created) == {"id", "name"}
    assert created["name"] == "Inmobiliaria Sur"
    assert _ok(site.call("get", f"/v1/organizations/{created['id']}", "platform_admin")) == created
    assert len(audit_actions(site.stack, created["id"], "organization.created")) == 1


# The matrix pins an org_admin's 403 and lets the others answer 403 or 404 (both leak nothing);
# this pins the 403 the API gives them, and a user with no role at all.
@pytest.mark.parametrize("role", ["building_admin", "concierge", "support", "stranger"])
def test_only_a_platform_admin_may_create_an_organization(site, role):
    response = site.call("post", "/v1/organizations", role, json={"name": "Not allowed"})
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("body", [{"name": ""}, {}, {"name": "X", "plan": "gold"}])
def test_an_invalid_organization_is_refused(site, body):
    assert_problem(site.call("post", "/v1/organizations", "platform_admin", json=body), 422, "validation-error")


def test_an_unknown_organization_is_not_found(site):
    assert_problem(site.call("get", f"/v1/organizations/{uuid.uuid4()}", "platform_admin"), 404, "not-found")


def test_a_support_read_of_an_organization_is_audited(site):
    before = len(audit_actions(site.stack, site.organization_id, "support.read"))
    _ok(site.call("get", f"/v1/organizations/{site.organization_id}", "support"))
    rows = audit_actions(site.stack, site.organization_id, "support.read")
    assert len(rows) == before + 1
    assert rows[-1][0] == site.people["support"]["id"]


# --- members ----------------------------------------------------------------------------------


def add_member(site: Site, role_of_caller: str = "org_admin", **body: Any) -> Any:
    return site.call("post", f"/v1/organizations/{site.organization_id}/members", role_of_caller, json=body)


def staff_email() -> str:
    return f"staff-{uuid.uuid4().hex[:10]}@staff.test"


def login(site: Site, email: str, password: str) -> dict[str, Any]:
    return _ok(site.call("post", "/v1/auth/login", json={"email": email, "password": password}))


def test_a_new_staff_member_gets_an_account_with_the_given_password(site):
    email = staff_email()
    created = _ok(
        add_member(site, email=email, password="staff-password-1", role="concierge", building_ids=[site.main]), 201
    )
    assert set(created) == {"user_id", "membership_id"}
    assert login(site, email, "staff-password-1").get("mfa_token"), "the given password opens the account"
    assert_problem(
        site.call("post", "/v1/auth/login", json={"email": email, "password": "staff-password-2"}),
        401,
        "unauthenticated",
    )
    (stored,) = site.stack.sql(
        "SELECT organization_id::text, role FROM memberships WHERE id = %s", (created["membership_id"],)
    )
    assert stored == (site.organization_id, "concierge")
    rows = audit_actions(site.stack, created["membership_id"], "membership.created")
    assert len(rows) == 1 and rows[0][0] == site.people["org_admin"]["id"]
    assert email.split("@")[0] not in str(rows[0][1])


def test_a_new_staff_member_must_enroll_mfa_at_first_login(site):
    email = staff_email()
    _ok(
        add_member(site, email=email, password="staff-password-1", role="building_admin", building_ids=[site.main]), 201
    )
    answer = login(site, email, "staff-password-1")
    assert answer.get("mfa_enrollment_required") is True and answer["mfa_token"]
    assert "access_token" not in answer


def test_an_existing_account_gets_a_membership_without_a_password(site):
    person = site.stack.create_user()
    assert "access_token" in login(site, person["email"], person["password"]), "a plain user needs no MFA yet"
    created = _ok(add_member(site, email=person["email"].upper(), role="concierge", building_ids=[site.main]), 201)
    assert created["user_id"] == person["id"]
    answer = login(site, person["email"], person["password"])
    assert answer.get("mfa_enrollment_required") is True, "staff must use a second factor once they hold a membership"
    enroll_mfa(site.stack, person)
    me = _ok(site.stack.client().get("/v1/me", headers=site.stack.login(person)))
    assert [(m["organization_id"], m["role"], m["building_ids"]) for m in me["memberships"]] == [
        (site.organization_id, "concierge", [site.main])
    ]


def test_a_password_for_an_existing_account_is_refused(site):
    person = site.stack.create_user()
    response = add_member(site, email=person["email"], password="another-password", role="org_admin")
    assert_problem(response, 422, "validation-error", "/password")
    assert "access_token" in login(site, person["email"], person["password"]), "the old password still works"


def test_a_new_account_without_a_password_is_refused(site):
    response = add_member(site, email=staff_email(), role="org_admin")
    assert_problem(response, 422, "validation-error", "/password")


def test_a_new_account_with_a_weak_password_is_refused(site):
    response = add_member(site, email=staff_email(), password="short", role="org_admin")
    assert_problem(response, 422, "validation-error", "/password")


@pytest.mark.parametrize("role", ["building_admin", "concierge"])
def test_a_building_role_without_buildings_is_refused(site, role):
    response = add_member(site, email=staff_email(), password="staff-password-1", role=role)
    assert_problem(response, 422, "validation-error", "/building_ids")


def test_an_org_admin_with_buildings_is_refused(site):
    response = add_member(
        site, email=staff_email(), password="staff-password-1", role="org_admin", building_ids=[site.main]
    )
    assert_problem(response, 422, "validation-error", "/building_ids")


def test_a_building_of_another_organization_is_refused(site, world):
    email = staff_email()
    response = add_member(
        site,
        email=email,
        password="staff-password-1",
        role="building_admin",
        building_ids=[site.main, world.b.buildings["B1"]],
    )
    assert_problem(response, 422, "validation-error", "/building_ids")
    assert_problem(
        site.call("post", "/v1/auth/login", json={"email": email, "password": "staff-password-1"}),
        401,
        "unauthenticated",
    )


def test_an_unknown_building_is_refused(site):
    response = add_member(
        site, email=staff_email(), password="staff-password-1", role="concierge", building_ids=[str(uuid.uuid4())]
    )
    assert_problem(response, 422, "validation-error", "/building_ids")


def test_an_unknown_role_is_refused(site):
    response = add_member(site, email=staff_email(), password="staff-password-1", role="platform_admin")
    assert_problem(response, 422, "validation-error", "/role")


def test_the_same_role_twice_in_one_organization_is_refused(site):
    email = staff_email()
    _ok(add_member(site, email=email, password="staff-password-1", role="concierge", building_ids=[site.main]), 201)
    again = add_member(site, email=email, role="concierge", building_ids=[site.annex])
    assert_problem(again, 409, "conflict")


def test_one_person_may_hold_several_roles(site):
    email = staff_email()
    first = _ok(
        add_member(site, email=email, password="staff-password-1", role="concierge", building_ids=[site.main]), 201
    )
    second = _ok(add_member(site, email=email, role="building_admin", building_ids=[site.annex]), 201)
    assert first["user_id"] == second["user_id"] and first["membership_id"] != second["membership_id"]


@pytest.mark.parametrize("caller", ["building_admin", "concierge", "support"])
def test_only_an_org_admin_adds_members(site, caller):
    email = staff_email()
    response = add_member(site, caller, email=email, password="staff-password-1", role="org_admin")
    assert_problem(response, 403, "forbidden")
    assert site.call("post", "/v1/auth/login", json={"email": email, "password": "staff-password-1"}).status_code == 401


# --- buildings --------------------------------------------------------------------------------


def test_a_new_building_gets_the_defaults(site):
    building = site.new_building(name="Torre Norte", address="Los Leones 1", contact_email="norte@x.test")
    assert building["organization_id"] == site.organization_id
    assert building["timezone"] == "America/Santiago"
    assert building["commission_rate"] == "0.1000"
    assert building["default_base_price_clp"] == 5000
    assert building["max_upcoming_bookings_per_resident"] == 2
    assert building["is_active"] is True
    assert (building["name"], building["address"], building["contact_email"]) == (
        "Torre Norte",
        "Los Leones 1",
        "norte@x.test",
    )
    assert _ok(site.call("get", f"/v1/buildings/{building['id']}", "org_admin")) == building


def test_a_new_building_keeps_the_given_settings(site):
    building = site.new_building(
        timezone="America/Punta_Arenas",
        default_base_price_clp=7000,
        max_upcoming_bookings_per_resident=5,
    )
    assert building["timezone"] == "America/Punta_Arenas"
    assert building["commission_rate"] == "0.1000"
    assert building["default_base_price_clp"] == 7000
    assert building["max_upcoming_bookings_per_resident"] == 5


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "/timezone"),
        ({"timezone": "not a zone"}, "/timezone"),
        ({"commission_rate": "1"}, "/commission_rate"),
        ({"commission_rate": "1.5"}, "/commission_rate"),
        ({"commission_rate": "-0.1"}, "/commission_rate"),
        ({"default_base_price_clp": -1}, "/default_base_price_clp"),
        ({"max_upcoming_bookings_per_resident": -1}, "/max_upcoming_bookings_per_resident"),
        ({"contact_email": "nobody"}, "/contact_email"),
        ({"name": ""}, "/name"),
        ({"floors": 12}, "/floors"),
    ],
)
def test_an_invalid_building_is_refused(site, fields, pointer):
    body = {"name": "Invalid", "address": "Calle 1", "contact_email": "ops@x.test"} | fields
    response = site.call("post", f"/v1/organizations/{site.organization_id}/buildings", "org_admin", json=body)
    assert_problem(response, 422, "validation-error", pointer)


def test_patch_changes_the_given_fields_and_is_audited(site):
    building = site.new_building()
    changes = {
        "name": "Renamed",
        "contact_email": "new@x.test",
        "default_base_price_clp": 6000,
        "timezone": "America/Lima",
    }
    updated = _ok(site.call("patch", f"/v1/buildings/{building['id']}", "org_admin", json=changes))
    assert (updated["name"], updated["contact_email"], updated["default_base_price_clp"], updated["timezone"]) == (
        "Renamed",
        "new@x.test",
        6000,
        "America/Lima",
    )
    assert updated["address"] == building["address"], "fields not sent are kept"
    assert _ok(site.call("get", f"/v1/buildings/{building['id']}", "org_admin")) == updated
    rows = audit_actions(site.stack, building["id"], "building.updated")
    assert len(rows) == 1
    actor, details = rows[0]
    assert actor == site.people["org_admin"]["id"]
    assert details["fields"] == sorted(changes)


@pytest.mark.parametrize("field_name", ["name", "timezone", "commission_rate", "is_active"])
def test_patch_with_null_is_refused_and_changes_nothing(site, field_name):
    building = site.new_building()
    response = site.call(
        "patch", f"/v1/buildings/{building['id']}", "org_admin", json={"name": "Changed", field_name: None}
    )
    assert_problem(response, 422, "validation-error", f"/{field_name}")
    assert _ok(site.call("get", f"/v1/buildings/{building['id']}", "org_admin")) == building


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"timezone": "Nowhere/Land"}, "/timezone"),
        ({"commission_rate": "1.0"}, "/commission_rate"),
        ({"id": "x"}, "/id"),
    ],
)
def test_patch_with_invalid_values_is_refused(site, fields, pointer):
    assert_problem(
        site.call("patch", f"/v1/buildings/{site.annex}", "org_admin", json=fields), 422, "validation-error", pointer
    )


# --- the commission is the platform's ----------------------------------------------------------


def book(site: Site, stack: Any, building_id: str) -> dict[str, Any]:
    """A confirmed booking of a 5,000 CLP block by a new resident of the building (through the worker)."""
    unit = {"unit_number": f"C{uuid.uuid4().hex[:6]}"}
    _ok(site.call("post", f"/v1/buildings/{building_id}/units", "platform_admin", json=unit), 201)
    (resident,) = make_residents(stack, building_id, 1)
    headers = stack.login(resident)
    block = _ok(site.new_block(site.new_spot(building_id)["id"], soon(3)), 201)
    body = {
        "availability_block_id": block["id"],
        "visitor_name": "Visita",
        "vehicle_plate": "CM" + uuid.uuid4().hex[:4],
    }
    accepted = stack.client().post("/v1/bookings", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.get_json()
    job = stack.wait_job(headers, accepted.get_json()["job_id"])
    assert job["status"] == "succeeded", job
    return job["result"]["booking"]


def building_row(site: Site, building_id: str) -> list[tuple[Any, ...]]:
    return site.stack.sql("SELECT commission_rate, name, updated_at FROM buildings WHERE id = %s", (building_id,))


@pytest.mark.parametrize("role", ["building_admin", "org_admin"])
def test_organization_staff_cannot_change_the_commission_rate(site, role):
    before = building_row(site, site.main)
    for body in ({"commission_rate": "0"}, {"name": "Zero commission", "commission_rate": "0.0001"}):
        problem = assert_problem(site.call("patch", f"/v1/buildings/{site.main}", role, json=body), 403, "forbidden")
        assert "platform" in problem["detail"] and not problem.get("errors"), problem
    assert building_row(site, site.main) == before
    assert before[0][0] == Decimal("0.1000")


def test_organization_staff_cannot_create_a_building_with_a_commission_rate(site):
    count = "SELECT count(*) FROM buildings WHERE organization_id = %s"
    (before,) = site.stack.sql(count, (site.organization_id,))
    body = {"name": "Cheap", "address": "Calle 1", "contact_email": "ops@x.test", "commission_rate": "0"}
    response = site.call("post", f"/v1/organizations/{site.organization_id}/buildings", "org_admin", json=body)
    problem = assert_problem(response, 403, "forbidden")
    assert "platform" in problem["detail"] and not problem.get("errors"), problem
    assert site.stack.sql(count, (site.organization_id,)) == [before]


def test_a_booking_after_refused_commission_changes_carries_the_platforms_ten_percent(site, worker):
    for role in ("building_admin", "org_admin"):
        site.call("patch", f"/v1/buildings/{site.main}", role, json={"commission_rate": "0"})
    booking = book(site, worker, site.main)
    assert (booking["price_clp"], booking["commission_clp"]) == (5000, 500)


def test_the_platform_admin_sets_the_commission_rate_and_bookings_carry_it(site, worker):
    building = site.new_building("platform_admin", commission_rate="0.2")
    assert building["commission_rate"] == "0.2000"
    updated = _ok(
        site.call("patch", f"/v1/buildings/{building['id']}", "platform_admin", json={"commission_rate": "0.05"})
    )
    assert updated["commission_rate"] == "0.0500"
    assert building_row(site, building["id"])[0][0] == Decimal("0.0500")
    assert book(site, worker, building["id"])["commission_clp"] == 250
    assert _ok(site.call("patch", f"/v1/buildings/{building['id']}", "org_admin", json={"name": "Still mine"}))


def test_archiving_a_building_keeps_it_readable_and_closes_sign_up(site):
    building = site.new_building()
    _ok(site.call("post", f"/v1/buildings/{building['id']}/units", "org_admin", json={"unit_number": "11"}), 201)
    archived = _ok(site.call("patch", f"/v1/buildings/{building['id']}", "org_admin", json={"is_active": False}))
    assert archived["is_active"] is False
    assert _ok(site.call("get", f"/v1/buildings/{building['id']}", "org_admin"))["is_active"] is False
    body = str(10_000_000 + uuid.uuid4().int % 89_999_999)
    registration = {
        "email": f"late-{uuid.uuid4().hex[:8]}@home.test",
        "password": "resident-password",
        "first_name": "A",
        "last_name": "B",
        "rut": f"{body}-{rut_check_digit(body)}",
        "building_id": building["id"],
        "unit_number": "11",
    }
    assert_problem(site.call("post", "/v1/auth/register", json=registration), 422, "validation-error", "/unit_number")
    restored = _ok(site.call("patch", f"/v1/buildings/{building['id']}", "org_admin", json={"is_active": True}))
    assert restored["is_active"] is True


def test_a_stranger_does_not_find_a_building(site):
    assert_problem(site.call("get", f"/v1/buildings/{site.main}", "stranger"), 404, "not-found")


# --- units and spots --------------------------------------------------------------------------


def test_a_second_unit_with_the_same_number_is_refused(site):
    building = site.new_building()
    unit = _ok(
        site.call(
            "post", f"/v1/buildings/{building['id']}/units", "org_admin", json={"unit_number": "1204", "floor": 12}
        ),
        201,
    )
    assert (unit["building_id"], unit["unit_number"], unit["floor"]) == (building["id"], "1204", 12)
    again = site.call("post", f"/v1/buildings/{building['id']}/units", "org_admin", json={"unit_number": " 1204 "})
    assert_problem(again, 409, "conflict")
    units = _ok(site.call("get", f"/v1/buildings/{building['id']}/units", "org_admin"))["items"]
    assert [u["unit_number"] for u in units] == ["1204"]


def test_the_same_unit_number_in_another_building_is_accepted(site):
    first, second = site.new_building(), site.new_building()
    for building in (first, second):
        _ok(site.call("post", f"/v1/buildings/{building['id']}/units", "org_admin", json={"unit_number": "301"}), 201)


def test_a_second_spot_with_the_same_number_is_refused(site):
    building = site.new_building()
    spot = site.new_spot(building["id"], "V7")
    assert (spot["spot_number"], spot["is_active"], spot["building_id"]) == ("V7", True, building["id"])
    assert_problem(
        site.call("post", f"/v1/buildings/{building['id']}/spots", "org_admin", json={"spot_number": "V7"}),
        409,
        "conflict",
    )
    spots = _ok(site.call("get", f"/v1/buildings/{building['id']}/spots", "org_admin"))["items"]
    assert [s["spot_number"] for s in spots] == ["V7"]


def test_the_same_spot_number_in_another_building_is_accepted(site):
    site.new_spot(site.new_building()["id"], "V1")
    site.new_spot(site.new_building()["id"], "V1")


# --- manual blocks ----------------------------------------------------------------------------


def test_a_manual_block_is_created_available(site):
    building = site.new_building()
    spot = site.new_spot(building["id"], "V9")
    start = soon(3)
    block = _ok(site.new_block(spot["id"], start, base_price_clp=4200), 201)
    assert block["spot_id"] == spot["id"] and block["spot_number"] == "V9"
    assert (block["start"], block["end"]) == (iso(start), iso(start + timedelta(hours=11)))
    assert (block["duration"], block["base_price_clp"], block["status"]) == ("11h", 4200, "available")
    assert len(audit_actions(site.stack, block["id"], "block.created")) == 1


def test_a_block_overlapping_another_block_of_the_spot_is_refused(site):
    spot = site.new_spot(site.main)
    start = soon(4)
    _ok(site.new_block(spot["id"], start), 201)
    assert_problem(site.new_block(spot["id"], start + timedelta(hours=10)), 409, "conflict")
    assert_problem(site.new_block(spot["id"], start - timedelta(hours=1)), 409, "conflict")
    assert_problem(site.new_block(spot["id"], start), 409, "conflict")


def test_adjacent_blocks_of_one_spot_are_accepted(site):
    spot = site.new_spot(site.main)
    start = soon(5)
    _ok(site.new_block(spot["id"], start), 201)
    _ok(site.new_block(spot["id"], start + timedelta(hours=11)), 201)
    _ok(site.new_block(spot["id"], start - timedelta(hours=11)), 201)


def test_the_same_interval_on_another_spot_is_accepted(site):
    start = soon(6)
    _ok(site.new_block(site.new_spot(site.main)["id"], start), 201)
    _ok(site.new_block(site.new_spot(site.main)["id"], start), 201)


def test_a_block_ending_before_it_starts_is_refused(site):
    spot = site.new_spot(site.main)
    start = soon(3)
    response = site.new_block(spot["id"], start, end=iso(start - timedelta(hours=1)))
    assert_problem(response, 422, "validation-error", "/end")
    assert_problem(site.new_block(spot["id"], start, end=iso(start)), 422, "validation-error", "/end")


def test_a_block_starting_in_the_past_is_refused(site):
    spot = site.new_spot(site.main)
    assert_problem(site.new_block(spot["id"], soon(-1)), 422, "validation-error", "/start")


def test_a_block_with_a_naive_datetime_is_refused(site):
    spot = site.new_spot(site.main)
    start = soon(3)
    naive = start.replace(tzinfo=None).isoformat()
    assert_problem(site.new_block(spot["id"], start, start=naive), 422, "validation-error", "/start")


@pytest.mark.parametrize(
    ("extra", "pointer"),
    [({"duration": "5h"}, "/duration"), ({"base_price_clp": -1}, "/base_price_clp"), ({"colour": "red"}, "/colour")],
)
def test_a_block_with_invalid_fields_is_refused(site, extra, pointer):
    spot = site.new_spot(site.main)
    assert_problem(site.new_block(spot["id"], soon(3), **extra), 422, "validation-error", pointer)


# --- block and unblock ------------------------------------------------------------------------


def test_staff_block_and_unblock_a_block(site):
    spot = site.new_spot(site.main)
    block = _ok(site.new_block(spot["id"], soon(7)), 201)
    blocked = _ok(site.call("post", f"/v1/availability-blocks/{block['id']}/block", "building_admin"))
    assert blocked["status"] == "blocked" and blocked["id"] == block["id"]
    (version,) = site.stack.sql("SELECT version FROM availability_blocks WHERE id = %s", (block["id"],))[0]
    assert version == 2
    again = _ok(site.call("post", f"/v1/availability-blocks/{block['id']}/block", "org_admin"))
    assert again["status"] == "blocked", "blocking a blocked block changes nothing"
    unblocked = _ok(site.call("post", f"/v1/availability-blocks/{block['id']}/unblock", "org_admin"))
    assert unblocked["status"] == "available"
    (version,) = site.stack.sql("SELECT version FROM availability_blocks WHERE id = %s", (block["id"],))[0]
    assert version == 3
    assert len(audit_actions(site.stack, block["id"], "block.blocked")) == 1
    assert len(audit_actions(site.stack, block["id"], "block.unblocked")) == 1


# --- availability search ----------------------------------------------------------------------


def search(site: Site, building_id: str, role: str = "org_admin", **query: Any) -> dict[str, Any]:
    return _ok(site.call("get", f"/v1/buildings/{building_id}/availability", role, query_string=query))


def test_search_shows_only_the_buildings_available_blocks(site):
    building, other = site.new_building(), site.new_building()
    spot, elsewhere = site.new_spot(building["id"], "S1"), site.new_spot(other["id"], "S1")
    start = soon(2)
    mine = _ok(site.new_block(spot["id"], start), 201)
    hidden = _ok(site.new_block(spot["id"], start + timedelta(hours=12)), 201)
    _ok(site.call("post", f"/v1/availability-blocks/{hidden['id']}/block", "org_admin"))
    _ok(site.new_block(elsewhere["id"], start), 201)
    found = search(site, building["id"])
    assert [b["id"] for b in found["items"]] == [mine["id"]]
    assert found["next_cursor"] is None
    item = found["items"][0]
    assert set(item) >= {
        "id",
        "spot_id",
        "spot_number",
        "start",
        "end",
        "duration",
        "base_price_clp",
        "price_clp",
        "status",
    }
    assert (item["spot_number"], item["status"], item["price_clp"]) == ("S1", "available", 5000)
    blocked = search(site, building["id"], status="blocked")
    assert [b["id"] for b in blocked["items"]] == [hidden["id"]]


def test_search_filters_by_from_to_and_duration(site):
    building = site.new_building()
    spot = site.new_spot(building["id"])
    day = soon(3)
    ids = [_ok(site.new_block(spot["id"], day + timedelta(days=n)), 201)["id"] for n in range(3)]
    long_block = _ok(site.new_block(spot["id"], day + timedelta(days=4), hours=23), 201)
    window = search(site, building["id"], **{"from": iso(day + timedelta(days=1)), "to": iso(day + timedelta(days=2))})
    assert [b["id"] for b in window["items"]] == [ids[1]], "from is inclusive, to is exclusive"
    assert [b["id"] for b in search(site, building["id"], duration="23h")["items"]] == [long_block["id"]]
    assert [b["id"] for b in search(site, building["id"], duration="11h")["items"]] == ids
    assert search(site, building["id"], **{"to": iso(day)})["items"] == []


def test_search_defaults_to_the_next_thirty_days(site):
    building = site.new_building()
    spot = site.new_spot(building["id"])
    near = _ok(site.new_block(spot["id"], soon(1)), 201)
    _ok(site.new_block(spot["id"], soon(40)), 201)
    assert [b["id"] for b in search(site, building["id"])["items"]] == [near["id"]]


def test_search_pages_with_a_cursor_in_start_order(site):
    building = site.new_building()
    spots = [site.new_spot(building["id"]) for _ in range(2)]
    start = soon(2)
    expected = [_ok(site.new_block(spots[n % 2]["id"], start + timedelta(hours=12 * n)), 201)["id"] for n in range(4)]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = search(site, building["id"], **query)
        pages += 1
        assert len(page["items"]) <= 1
        seen.extend(b["id"] for b in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert pages < 10
    assert seen == expected


def test_a_bad_cursor_is_refused(site):
    response = site.call("get", f"/v1/buildings/{site.main}/availability?cursor=garbage", "org_admin")
    assert_problem(response, 422, "validation-error", "/cursor")


@pytest.mark.parametrize("query", ["duration=5h", "status=sold", "from=2030-01-01T00:00:00", "limit=0", "limit=201"])
def test_an_invalid_search_is_refused(site, query):
    assert site.call("get", f"/v1/buildings/{site.main}/availability?{query}", "org_admin").status_code == 422


def test_a_stranger_cannot_search_a_building(site):
    assert_problem(site.call("get", f"/v1/buildings/{site.main}/availability", "stranger"), 404, "not-found")


# --- stats ------------------------------------------------------------------------------------

ZERO_BOOKINGS = {
    s: 0 for s in ("pending", "confirmed", "checked_in", "overstay", "checked_out", "cancelled", "no_show")
}


def stats(site: Site, path: str, role: str = "org_admin", **query: Any) -> dict[str, Any]:
    return _ok(site.call("get", path, role, query_string=query))


def test_building_stats_without_bookings_are_zero_with_offered_hours(site):
    building = site.new_building()
    spot = site.new_spot(building["id"])
    start = soon(8)
    for n in range(2):
        _ok(site.new_block(spot["id"], start + timedelta(hours=12 * n)), 201)
    window = {"from": iso(start - timedelta(hours=1)), "to": iso(start + timedelta(days=1))}
    figures = stats(site, f"/v1/buildings/{building['id']}/stats", **window)
    assert figures["bookings_by_status"] == ZERO_BOOKINGS
    assert (figures["revenue_clp"], figures["commission_clp"]) == (0, 0)
    assert figures["occupancy"] == 0
    assert figures["offered_hours"] == 22
    outside = stats(site, f"/v1/buildings/{building['id']}/stats", **{"from": iso(soon(20)), "to": iso(soon(21))})
    assert outside["offered_hours"] == 0 and outside["occupancy"] == 0


@pytest.mark.parametrize("same", [False, True])
def test_stats_with_to_not_after_from_are_refused(site, same):
    start = soon(1)
    to = start if same else start - timedelta(days=1)
    response = site.call(
        "get", f"/v1/buildings/{site.main}/stats", "org_admin", query_string={"from": iso(start), "to": iso(to)}
    )
    assert_problem(response, 422, "validation-error", "/to")
    response = site.call(
        "get",
        f"/v1/organizations/{site.organization_id}/stats",
        "org_admin",
        query_string={"from": iso(start), "to": iso(to)},
    )
    assert_problem(response, 422, "validation-error", "/to")


def test_organization_stats_for_an_org_admin_list_both_buildings(site):
    start = soon(9)
    for building_id in (site.main, site.annex):
        _ok(site.new_block(site.new_spot(building_id)["id"], start), 201)
    window = {"from": iso(start), "to": iso(start + timedelta(hours=1))}
    figures = stats(site, f"/v1/organizations/{site.organization_id}/stats", **window)
    per_building = {b["building_id"]: b for b in figures["buildings"]}
    assert {site.main, site.annex} <= set(per_building)
    assert per_building[site.main]["offered_hours"] == per_building[site.annex]["offered_hours"] == 11
    assert figures["offered_hours"] == sum(b["offered_hours"] for b in figures["buildings"])
    assert figures["bookings_by_status"] == ZERO_BOOKINGS and figures["revenue_clp"] == 0


def test_a_support_read_of_building_stats_is_audited(site):
    before = len(audit_actions(site.stack, site.main, "support.read"))
    stats(site, f"/v1/buildings/{site.main}/stats", "support")
    assert len(audit_actions(site.stack, site.main, "support.read")) == before + 1


# --- unknown organizations and odd inputs ------------------------------------------------------


def test_members_of_an_unknown_organization_are_not_found(site):
    body = {"email": staff_email(), "password": "staff-password-1", "role": "org_admin"}
    response = site.call("post", f"/v1/organizations/{uuid.uuid4()}/members", "platform_admin", json=body)
    assert_problem(response, 404, "not-found")


def test_a_building_in_an_unknown_organization_is_not_found(site):
    body = {"name": "Orphan", "address": "Calle 1", "contact_email": "ops@x.test"}
    response = site.call("post", f"/v1/organizations/{uuid.uuid4()}/buildings", "platform_admin", json=body)
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("what", ["buildings", "stats"])
@pytest.mark.parametrize("role", ["platform_admin", "support"])
def test_the_buildings_and_stats_of_an_unknown_organization_are_not_found(site, what, role):
    response = site.call("get", f"/v1/organizations/{uuid.uuid4()}/{what}", role)
    assert_problem(response, 404, "not-found")


def test_a_building_listed_twice_on_a_membership_counts_once(site):
    email = staff_email()
    response = add_member(
        site, email=email, password="staff-password-1", role="concierge", building_ids=[site.main, site.main]
    )
    assert response.status_code in (201, 422), response.get_json()
    if response.status_code == 201:
        (count,) = site.stack.sql(
            "SELECT count(*) FROM membership_buildings WHERE membership_id = %s",
            (response.get_json()["membership_id"],),
        )[0]
        assert count == 1


@pytest.mark.parametrize(("what", "field_name"), [("units", "unit_number"), ("spots", "spot_number")])
def test_a_blank_unit_or_spot_number_is_refused(site, what, field_name):
    response = site.call("post", f"/v1/buildings/{site.annex}/{what}", "org_admin", json={field_name: "   "})
    assert_problem(response, 422, "validation-error", f"/{field_name}")


# --- support's list reads are audited like its single reads ------------------------------------


def support_list_reads(site: Site, entity_type: str) -> list[tuple[Any, ...]]:
    return site.stack.sql(
        "SELECT entity_id, metadata FROM audit_logs WHERE action = 'support.read' AND entity_type = %s"
        " AND actor_id = %s ORDER BY id",
        (entity_type, site.people["support"]["id"]),
    )


def test_a_support_list_of_bookings_is_audited_with_what_it_showed(site, worker):
    booking = book(site, worker, site.annex)
    start = datetime.fromisoformat(booking["start"])
    window = f"from={iso(start)}&to={iso(start + timedelta(seconds=1))}"
    before = support_list_reads(site, "bookings")
    listed = _ok(site.call("get", f"/v1/bookings?status=confirmed&{window}&limit=200", "support"))
    shown = [item["id"] for item in listed["items"]]
    assert booking["id"] in shown
    rows = support_list_reads(site, "bookings")
    assert len(rows) == len(before) + 1
    entity_id, details = rows[-1]
    assert entity_id is None and details["ids"] == shown
    assert details["filters"] == {"status": "confirmed", "from": iso(start), "to": iso(start + timedelta(seconds=1))}
    _ok(site.call("get", f"/v1/bookings?{window}", "org_admin"))
    assert len(support_list_reads(site, "bookings")) == len(rows), "staff reads are not support reads"


def test_a_support_list_costs_the_same_statements_for_one_row_or_many(site, worker):
    book(site, worker, site.annex)
    book(site, worker, site.annex)
    with counted(worker) as one:
        assert len(_ok(site.call("get", "/v1/bookings?limit=1", "support"))["items"]) == 1
    with counted(worker) as many:
        assert len(_ok(site.call("get", "/v1/bookings?limit=50", "support"))["items"]) >= 2
    assert len(many) == len(one), "the audit row's commit must not reload the page row by row"


def test_a_support_list_of_pricing_rules_is_audited_with_what_it_showed(site):
    rule = {
        "name": "Support audit",
        "priority": 3,
        "starts_at": iso(soon(40)),
        "ends_at": iso(soon(40, 6)),
        "multiplier": "1.2",
    }
    created = _ok(site.call("post", f"/v1/buildings/{site.annex}/pricing-rules", "org_admin", json=rule), 201)
    before = support_list_reads(site, "building.pricing_rules")
    listed = _ok(site.call("get", f"/v1/buildings/{site.annex}/pricing-rules?limit=200", "support"))
    shown = [item["id"] for item in listed["items"]]
    assert created["id"] in shown
    rows = support_list_reads(site, "building.pricing_rules")
    assert len(rows) == len(before) + 1
    assert rows[-1][0] == site.annex and rows[-1][1]["ids"] == shown
