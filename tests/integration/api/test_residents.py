"""Residents: self sign-up (``POST /v1/auth/register``), personal data at rest, and verification by staff.

Every test here works in an organization of its own (built through the API by the world's platform
admin), so the shared ``world`` is never changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.domain.identity import rut_check_digit
from tests.support.world import add_staff

PASSWORD = "resident-password"


@dataclass
class Site:
    building_id: str
    other_building_id: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


@pytest.fixture(scope="module")
def site(world) -> Site:
    """One organization with two buildings; staff of every role, and a support user of our own."""
    stack, admin = world.stack, world.admin
    client = stack.client()
    org = _ok(client.post("/v1/organizations", json={"name": f"Residents {uuid.uuid4().hex[:6]}"}, headers=admin), 201)
    buildings = []
    for label, unit_number in (("Main", "101"), ("Annex", "201")):
        building = _ok(
            client.post(
                f"/v1/organizations/{org['id']}/buildings",
                json={"name": label, "address": f"Calle {label} 1", "contact_email": "ops@example.test"},
                headers=admin,
            ),
            201,
        )
        for number in (unit_number, "PH"):
            _ok(client.post(f"/v1/buildings/{building['id']}/units", json={"unit_number": number}, headers=admin), 201)
        buildings.append(building["id"])
    main, annex = buildings
    result = Site(building_id=main, other_building_id=annex)
    for label, role, building_ids in (
        ("org_admin", "org_admin", []),
        ("building_admin", "building_admin", [main]),
        ("concierge", "concierge", [main]),
        ("annex_admin", "building_admin", [annex]),
    ):
        person = add_staff(stack, admin, org["id"], role, building_ids)
        result.people[label] = person
        result.headers[label] = stack.login(person)
    support = stack.create_user(role="support")
    result.people["support"] = support
    result.headers["support"] = stack.login(support)
    return result


def fresh_rut() -> tuple[str, str]:
    """A random valid RUT: (body, check digit)."""
    body = str(10_000_000 + uuid.uuid4().int % 89_999_999)
    return body, rut_check_digit(body)


def dotted(body: str, check: str) -> str:
    return f"{int(body):,}".replace(",", ".") + f"-{check}"


def registration(site: Site, **overrides: Any) -> dict[str, Any]:
    body, check = fresh_rut()
    form = {
        "email": f"resident-{uuid.uuid4().hex[:12]}@home.test",
        "password": PASSWORD,
        "first_name": "Valentina",
        "last_name": "Zuñiga",
        "rut": dotted(body, check),
        "phone": "9 8765 4321",
        "building_id": site.building_id,
        "unit_number": "101",
    }
    form.update(overrides)
    return form


def register(stack: Any, form: dict[str, Any]) -> Any:
    return stack.client().post("/v1/auth/register", json=form)


def registered(stack: Any, form: dict[str, Any]) -> str:
    return _ok(register(stack, form), 201)["id"]


def assert_invalid(response: Any, pointer: str) -> None:
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["type"] == "/problems/validation-error"
    assert pointer in [e["pointer"] for e in problem["errors"]], problem


def audit_rows(stack: Any, action: str, entity_id: str) -> list[tuple[Any, ...]]:
    return stack.sql(
        "SELECT actor_type, actor_id::text, entity_type, metadata::text FROM audit_logs "
        "WHERE action = %s AND entity_id = %s ORDER BY id",
        (action, entity_id),
    )


# --- sign-up ----------------------------------------------------------------------------------


def test_registration_creates_an_unverified_resident(stack, site):
    response = register(stack, registration(site))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"id", "status"}
    assert body["status"] == "pending_verification"
    uuid.UUID(body["id"])
    (verified_at,) = stack.sql("SELECT verified_at FROM residents WHERE id = %s", (body["id"],))[0]
    assert verified_at is None


def test_a_second_registration_with_the_same_email_is_refused(stack, site):
    first = registration(site)
    registered(stack, first)
    again = registration(site, email=first["email"].upper())
    response = register(stack, again)
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["type"] == "/problems/conflict"
    rut_taken = register(stack, registration(site, rut=again["rut"]))
    assert rut_taken.status_code == 201, "the refused RUT was not kept: nothing of the refused sign-up remains"


def test_a_second_registration_with_the_same_rut_written_differently_is_refused(stack, site):
    body, check = fresh_rut()
    registered(stack, registration(site, rut=dotted(body, check)))
    for spelling in (f"{body}-{check}", f"{body}{check}", f" {body} {check.lower()} "):
        response = register(stack, registration(site, rut=spelling))
        assert response.status_code == 409, (spelling, response.get_json())
        assert response.get_json()["type"] == "/problems/conflict"


def test_the_rut_is_unique_across_buildings(stack, site):
    form = registration(site)
    registered(stack, form)
    elsewhere = registration(site, rut=form["rut"], building_id=site.other_building_id, unit_number="201")
    assert register(stack, elsewhere).status_code == 409


def test_a_rut_with_a_wrong_check_digit_is_refused(stack, site):
    body, check = fresh_rut()
    wrong = "0" if check != "0" else "1"
    assert_invalid(register(stack, registration(site, rut=dotted(body, wrong))), "/rut")


def test_a_rut_with_letters_in_its_body_is_refused(stack, site):
    assert_invalid(register(stack, registration(site, rut="12.3A5.678-5")), "/rut")


def test_a_password_shorter_than_ten_characters_is_refused(stack, site):
    assert_invalid(register(stack, registration(site, password="123456789")), "/password")


def test_a_password_of_exactly_ten_characters_is_enough(stack, site):
    assert register(stack, registration(site, password="0123456789")).status_code == 201


def test_an_unknown_unit_is_refused(stack, site):
    assert_invalid(register(stack, registration(site, unit_number="9999")), "/unit_number")


def test_a_unit_of_another_building_is_refused(stack, site):
    assert_invalid(register(stack, registration(site, unit_number="201")), "/unit_number")


def test_an_unknown_building_is_refused(stack, site):
    assert_invalid(register(stack, registration(site, building_id=str(uuid.uuid4()))), "/unit_number")


@pytest.mark.parametrize("phone", ["12345", "not a phone", "+0123456789", "9123456789"])
def test_an_invalid_phone_is_refused(stack, site, phone):
    assert_invalid(register(stack, registration(site, phone=phone)), "/phone")


def test_the_phone_is_optional(stack, site):
    form = registration(site)
    del form["phone"]
    assert register(stack, form).status_code == 201


def test_unknown_fields_are_refused(stack, site):
    response = register(stack, registration(site, role="platform_admin"))
    assert_invalid(response, "/role")


@pytest.mark.parametrize(
    "missing", ["email", "password", "first_name", "last_name", "rut", "building_id", "unit_number"]
)
def test_every_required_field_is_required(stack, site, missing):
    form = registration(site)
    del form[missing]
    assert_invalid(register(stack, form), f"/{missing}")


def test_a_refused_registration_changes_nothing(stack, site):
    form = registration(site)
    assert_invalid(register(stack, {**form, "unit_number": "9999"}), "/unit_number")
    assert register(stack, form).status_code == 201, "neither the e-mail nor the RUT was kept"


# --- personal data at rest --------------------------------------------------------------------


def test_raw_sql_shows_no_plaintext_personal_data(stack, site):
    body, check = fresh_rut()
    marker = uuid.uuid4().hex[:8]
    form = registration(
        site,
        email=f"plain-{marker}@home.test",
        first_name=f"Firstname{marker}",
        last_name=f"Lastname{marker}",
        rut=dotted(body, check),
        phone="+56 9 7531 8642",
    )
    resident_id = registered(stack, form)
    (resident_row,) = stack.sql("SELECT row_to_json(r)::text FROM residents r WHERE id = %s", (resident_id,))[0]
    (user_row,) = stack.sql(
        "SELECT row_to_json(u)::text FROM users u JOIN residents r ON r.user_id = u.id WHERE r.id = %s",
        (resident_id,),
    )[0]
    audit_text = " ".join(
        row[0]
        for row in stack.sql(
            "SELECT row_to_json(a)::text FROM audit_logs a WHERE entity_id = %s OR actor_id::text = "
            "(SELECT user_id::text FROM residents WHERE id = %s)",
            (resident_id, resident_id),
        )
    )
    secrets = [marker, body, "975318642", "Firstname", "Lastname", form["email"].split("@")[0]]
    for text in (resident_row, user_row, audit_text):
        for secret in secrets:
            assert secret.lower() not in text.lower(), (secret, text)
    assert "rut_encrypted" in resident_row and "phone_encrypted" in resident_row


# --- the unverified resident --------------------------------------------------------------------


def test_an_unverified_resident_can_log_in_and_see_their_account(stack, site):
    form = registration(site)
    resident_id = registered(stack, form)
    login = stack.client().post("/v1/auth/login", json={"email": form["email"], "password": PASSWORD})
    assert login.status_code == 200, login.get_json()
    assert "access_token" in login.get_json(), "a resident needs no second factor"
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    me = _ok(stack.client().get("/v1/me", headers=headers))
    assert me["email"] == form["email"]
    assert me["memberships"] == [] and me["mfa_enabled"] is False
    resident = me["resident"]
    assert resident["id"] == resident_id
    assert resident["status"] == "pending_verification"
    assert resident["verified_at"] is None
    assert resident["building_id"] == site.building_id and resident["unit_number"] == "101"
    assert resident["rut"] == normalized_rut(form["rut"])
    assert resident["phone"] == "+56987654321"
    assert (resident["first_name"], resident["last_name"]) == ("Valentina", "Zuñiga")


def normalized_rut(spelled: str) -> str:
    compact = spelled.replace(".", "").replace("-", "").strip().upper()
    return f"{compact[:-1]}-{compact[-1]}"


# --- staff views ------------------------------------------------------------------------------


def residents_of(stack: Any, site: Site, headers: dict[str, str], status: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 200, **({"status": status} if status else {}), **({"cursor": cursor} if cursor else {})}
        page = _ok(
            stack.client().get(f"/v1/buildings/{site.building_id}/residents", query_string=query, headers=headers)
        )
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


@pytest.mark.parametrize("role", ["org_admin", "building_admin"])
def test_building_staff_list_residents_with_their_decrypted_data(stack, site, role):
    form = registration(site, phone="912340000")
    resident_id = registered(stack, form)
    listed = {r["id"]: r for r in residents_of(stack, site, site.headers[role])}
    mine = listed[resident_id]
    assert mine["email"] == form["email"]
    assert mine["rut"] == normalized_rut(form["rut"])
    assert mine["phone"] == "+56912340000"
    assert (mine["first_name"], mine["last_name"], mine["unit_number"]) == ("Valentina", "Zuñiga", "101")
    assert mine["status"] == "pending_verification"
    assert all(r["building_id"] == site.building_id for r in listed.values())


def test_the_resident_list_filters_by_status(stack, site):
    waiting = registered(stack, registration(site))
    accepted = registered(stack, registration(site))
    _ok(stack.client().post(f"/v1/residents/{accepted}/verify", headers=site.headers["building_admin"]))
    headers = site.headers["org_admin"]
    pending = {r["id"]: r["status"] for r in residents_of(stack, site, headers, "pending_verification")}
    verified = {r["id"]: r["status"] for r in residents_of(stack, site, headers, "verified")}
    everyone = {r["id"] for r in residents_of(stack, site, headers)}
    assert waiting in pending and accepted not in pending
    assert accepted in verified and waiting not in verified
    assert set(pending.values()) == {"pending_verification"} and set(verified.values()) == {"verified"}
    assert {waiting, accepted} <= everyone


def test_the_resident_list_pages_with_a_cursor(stack, site):
    registered(stack, registration(site))
    registered(stack, registration(site))
    headers = site.headers["org_admin"]
    url = f"/v1/buildings/{site.building_id}/residents"
    first = _ok(stack.client().get(url, query_string={"limit": 1}, headers=headers))
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = _ok(stack.client().get(url, query_string={"limit": 1, "cursor": first["next_cursor"]}, headers=headers))
    assert len(second["items"]) == 1 and second["items"][0]["id"] != first["items"][0]["id"]


def test_an_unknown_status_filter_is_refused(stack, site):
    response = stack.client().get(
        f"/v1/buildings/{site.building_id}/residents?status=banned", headers=site.headers["org_admin"]
    )
    assert response.status_code == 422


def test_a_concierge_may_not_list_residents(stack, site):
    response = stack.client().get(f"/v1/buildings/{site.building_id}/residents", headers=site.headers["concierge"])
    assert response.status_code == 403
    assert response.get_json()["type"] == "/problems/forbidden"


def test_a_building_admin_of_another_building_does_not_see_this_one(stack, site):
    response = stack.client().get(f"/v1/buildings/{site.building_id}/residents", headers=site.headers["annex_admin"])
    assert response.status_code == 404


def test_residents_are_not_listed_to_a_resident(stack, site):
    form = registration(site)
    registered(stack, form)
    headers = stack.login({"email": form["email"], "password": PASSWORD})
    response = stack.client().get(f"/v1/buildings/{site.building_id}/residents", headers=headers)
    assert response.status_code == 403


# --- verification -----------------------------------------------------------------------------


def test_building_staff_verify_a_resident(stack, site):
    form = registration(site)
    resident_id = registered(stack, form)
    verified = _ok(stack.client().post(f"/v1/residents/{resident_id}/verify", headers=site.headers["building_admin"]))
    assert verified["id"] == resident_id
    assert verified["status"] == "verified"
    assert verified["verified_at"] and verified["verified_at"].endswith("Z")
    assert verified["rut"] == normalized_rut(form["rut"]) and verified["email"] == form["email"]
    headers = stack.login({"email": form["email"], "password": PASSWORD})
    assert _ok(stack.client().get("/v1/me", headers=headers))["resident"]["status"] == "verified"


def test_an_org_admin_may_verify_a_resident(stack, site):
    resident_id = registered(stack, registration(site))
    verified = _ok(stack.client().post(f"/v1/residents/{resident_id}/verify", headers=site.headers["org_admin"]))
    assert verified["status"] == "verified"


def test_verifying_twice_answers_the_same_verified_resident_and_is_audited_once(stack, site):
    resident_id = registered(stack, registration(site))
    url = f"/v1/residents/{resident_id}/verify"
    first = _ok(stack.client().post(url, headers=site.headers["building_admin"]))
    second = _ok(stack.client().post(url, headers=site.headers["org_admin"]))
    assert second["status"] == "verified"
    assert second["verified_at"] == first["verified_at"]
    rows = audit_rows(stack, "resident.verified", resident_id)
    assert len(rows) == 1, rows
    actor_type, actor_id, entity_type, _ = rows[0]
    assert (actor_type, actor_id, entity_type) == ("human", site.people["building_admin"]["id"], "resident")
    (verified_by,) = stack.sql("SELECT verified_by::text FROM residents WHERE id = %s", (resident_id,))[0]
    assert verified_by == site.people["building_admin"]["id"]


def test_a_concierge_may_not_verify_a_resident(stack, site):
    resident_id = registered(stack, registration(site))
    response = stack.client().post(f"/v1/residents/{resident_id}/verify", headers=site.headers["concierge"])
    assert response.status_code == 403
    assert response.get_json()["type"] == "/problems/forbidden"
    assert audit_rows(stack, "resident.verified", resident_id) == []
    (verified_at,) = stack.sql("SELECT verified_at FROM residents WHERE id = %s", (resident_id,))[0]
    assert verified_at is None


def test_a_resident_may_not_verify_themselves(stack, site):
    form = registration(site)
    resident_id = registered(stack, form)
    headers = stack.login({"email": form["email"], "password": PASSWORD})
    assert stack.client().post(f"/v1/residents/{resident_id}/verify", headers=headers).status_code == 403


def test_a_building_admin_of_another_building_cannot_verify(stack, site):
    resident_id = registered(stack, registration(site))
    response = stack.client().post(f"/v1/residents/{resident_id}/verify", headers=site.headers["annex_admin"])
    assert response.status_code == 404


def test_verifying_an_unknown_resident_is_not_found(stack, site):
    response = stack.client().post(f"/v1/residents/{uuid.uuid4()}/verify", headers=site.headers["org_admin"])
    assert response.status_code == 404


def test_verification_needs_a_login(stack, site):
    resident_id = registered(stack, registration(site))
    assert stack.client().post(f"/v1/residents/{resident_id}/verify").status_code == 401


# --- support ----------------------------------------------------------------------------------


def test_support_can_list_residents_and_every_read_is_audited(stack, site):
    resident_id = registered(stack, registration(site))
    support_id = site.people["support"]["id"]

    def support_reads() -> list[tuple[Any, ...]]:
        return stack.sql(
            "SELECT actor_id::text, entity_type FROM audit_logs WHERE action = 'support.read' AND entity_id = %s "
            "AND actor_id = %s",
            (site.building_id, support_id),
        )

    before = len(support_reads())
    url = f"/v1/buildings/{site.building_id}/residents?limit=200"
    first = _ok(stack.client().get(url, headers=site.headers["support"]))
    assert first["next_cursor"] is None
    seen = {r["id"]: r for r in first["items"]}
    assert seen[resident_id]["rut"] and seen[resident_id]["email"].endswith("@home.test"), "decrypted for support"
    _ok(stack.client().get(url, headers=site.headers["support"]))
    rows = support_reads()
    assert len(rows) == before + 2
    assert {entity_type for _, entity_type in rows} == {"building.residents"}


def test_support_may_not_verify_residents(stack, site):
    resident_id = registered(stack, registration(site))
    response = stack.client().post(f"/v1/residents/{resident_id}/verify", headers=site.headers["support"])
    assert response.status_code == 403
    assert audit_rows(stack, "resident.verified", resident_id) == []


def test_staff_reads_are_not_recorded_as_support_reads(stack, site):
    before = stack.sql(
        "SELECT count(*) FROM audit_logs WHERE action = 'support.read' AND entity_id = %s", (site.building_id,)
    )
    _ok(stack.client().get(f"/v1/buildings/{site.building_id}/residents", headers=site.headers["org_admin"]))
    after = stack.sql(
        "SELECT count(*) FROM audit_logs WHERE action = 'support.read' AND entity_id = %s", (site.building_id,)
    )
    assert after == before


@pytest.mark.parametrize("field_name", ["first_name", "last_name"])
def test_a_blank_name_is_refused(stack, site, field_name):
    assert_invalid(register(stack, registration(site, **{field_name: "   "})), f"/{field_name}")
