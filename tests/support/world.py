"""Two operators side by side, built through the API: the tenant-isolation fixture.

Organization A has buildings A1 and A2; organization B has B1. Each has an org_admin, and each
first building a building_admin, a concierge, a verified resident, units, spots and blocks. A
platform admin and a support user complete the cast. Staff get TOTP enrolled (their role needs
it); logins go through the real endpoints.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.stack import Stack


def valid_rut() -> str:
    """A fresh valid RUT (random body, computed check digit)."""
    from app.domain.identity import rut_check_digit

    body = str(10_000_000 + uuid.uuid4().int % 89_999_999)
    return f"{body}-{rut_check_digit(body)}"


def soon(*, days: int = 0, hours: int = 0, minutes: int = 0) -> str:
    """An RFC 3339 instant that far from now (on the minute), for blocks that can still be booked."""
    moment = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=days, hours=hours, minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Tenant:
    organization_id: str
    buildings: dict[str, str] = field(default_factory=dict)  # label -> id
    units: dict[str, str] = field(default_factory=dict)  # building label -> a unit id
    spots: dict[str, str] = field(default_factory=dict)  # building label -> a spot id
    blocks: dict[str, str] = field(default_factory=dict)  # building label -> an available block id
    residents: dict[str, str] = field(default_factory=dict)  # building label -> resident id
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # role label -> user record
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # role label -> auth headers


@dataclass
class World:
    stack: Stack
    admin: dict[str, str]
    support: dict[str, str]
    a: Tenant
    b: Tenant

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return getattr(self.stack.client(), method)(path, headers=headers or {}, **kwargs)


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def enroll_mfa(stack: Stack, person: dict[str, Any]) -> dict[str, Any]:
    from app.extensions import db
    from app.models import User
    from app.security import totp

    secret = totp.new_secret()
    with stack.context():
        user = db.session.get(User, uuid.UUID(person["id"]))
        user.mfa_secret, user.mfa_enabled = secret, True
        db.session.commit()
    person["totp_secret"] = secret
    return person


def add_staff(stack: Stack, admin: dict[str, str], org_id: str, role: str, building_ids: list[str]) -> dict[str, Any]:
    email = f"{role}-{uuid.uuid4().hex[:10]}@staff.test"
    body = {"email": email, "password": "staff-password-123", "role": role, "building_ids": building_ids}
    created = _ok(stack.client().post(f"/v1/organizations/{org_id}/members", json=body, headers=admin), 201)
    person = {"id": created["user_id"], "email": email, "password": "staff-password-123"}
    return enroll_mfa(stack, person)


def build_tenant(stack: Stack, admin: dict[str, str], name: str, building_labels: list[str]) -> Tenant:
    client = stack.client()
    org = _ok(client.post("/v1/organizations", json={"name": name}, headers=admin), 201)
    tenant = Tenant(organization_id=org["id"])
    org_admin = add_staff(stack, admin, org["id"], "org_admin", [])
    tenant.people["org_admin"] = org_admin
    tenant.headers["org_admin"] = stack.login(org_admin)
    for label in building_labels:
        building = _ok(
            client.post(
                f"/v1/organizations/{org['id']}/buildings",
                json={"name": f"{name} {label}", "address": f"Calle {label} 123", "contact_email": "ops@example.test"},
                headers=tenant.headers["org_admin"],
            ),
            201,
        )
        tenant.buildings[label] = building["id"]
        unit = _ok(
            client.post(f"/v1/buildings/{building['id']}/units", json={"unit_number": "101"}, headers=admin), 201
        )
        tenant.units[label] = unit["id"]
        spot = _ok(client.post(f"/v1/buildings/{building['id']}/spots", json={"spot_number": "V1"}, headers=admin), 201)
        tenant.spots[label] = spot["id"]
        block = _ok(
            client.post(
                f"/v1/spots/{spot['id']}/blocks",
                json={
                    "start": soon(days=2),
                    "end": soon(days=2, hours=11),
                    "duration": "11h",
                    "base_price_clp": 5000,
                },
                headers=admin,
            ),
            201,
        )
        tenant.blocks[label] = block["id"]
    first = building_labels[0]
    for role in ("building_admin", "concierge"):
        person = add_staff(stack, admin, org["id"], role, [tenant.buildings[first]])
        tenant.people[role] = person
        tenant.headers[role] = stack.login(person)
    resident = {
        "email": f"resident-{uuid.uuid4().hex[:10]}@home.test",
        "password": "resident-password",
        "first_name": "Ana",
        "last_name": "Pérez",
        "rut": valid_rut(),
        "phone": "9 1234 5678",
        "building_id": tenant.buildings[first],
        "unit_number": "101",
    }
    registered = _ok(client.post("/v1/auth/register", json=resident), 201)
    _ok(client.post(f"/v1/residents/{registered['id']}/verify", headers=admin))
    tenant.residents[first] = registered["id"]
    tenant.people["resident"] = resident
    tenant.headers["resident"] = stack.login(resident)
    return tenant


def build_world(stack: Stack) -> World:
    admin = stack.login(stack.create_user(role="platform_admin"))
    support = stack.login(stack.create_user(role="support"))
    a = build_tenant(stack, admin, f"Org A {uuid.uuid4().hex[:6]}", ["A1", "A2"])
    b = build_tenant(stack, admin, f"Org B {uuid.uuid4().hex[:6]}", ["B1"])
    return World(stack, admin, support, a, b)


def make_residents(stack: Stack, building_id: str, count: int) -> list[dict[str, Any]]:
    """Verified residents of a building's first unit, made directly through the models (fast)."""
    from sqlalchemy import select

    from app.domain.identity import normalize_rut
    from app.extensions import db
    from app.models import Resident, Unit
    from app.security.crypto import blind_index
    from app.services import audit, users

    made = []
    with stack.context():
        unit = db.session.execute(select(Unit).where(Unit.building_id == uuid.UUID(building_id))).scalars().first()
        assert unit is not None
        for _ in range(count):
            email = f"resident-{uuid.uuid4().hex[:12]}@home.test"
            user = users.create_user(email, "resident-password", audit.Actor.system())
            rut = normalize_rut(valid_rut())
            db.session.add(
                Resident(
                    user_id=user.id,
                    building_id=unit.building_id,
                    unit_id=unit.id,
                    first_name="Vecino",
                    last_name="Prueba",
                    rut=rut,
                    rut_bidx=blind_index("rut", rut),
                    verified_at=db.func.now(),
                )
            )
            made.append({"id": str(user.id), "email": email, "password": "resident-password"})
        db.session.commit()
    return made


def new_block(stack: Stack, admin: dict[str, str], spot_id: str, *, starts_in_minutes: int, hours: int = 11) -> str:
    body = {
        "start": soon(minutes=starts_in_minutes),
        "end": soon(minutes=starts_in_minutes, hours=hours),
        "duration": "11h",
        "base_price_clp": 5000,
    }
    return _ok(stack.client().post(f"/v1/spots/{spot_id}/blocks", json=body, headers=admin), 201)["id"]


def new_spot(stack: Stack, admin: dict[str, str], building_id: str) -> str:
    number = f"S{uuid.uuid4().hex[:6]}"
    response = stack.client().post(f"/v1/buildings/{building_id}/spots", json={"spot_number": number}, headers=admin)
    return _ok(response, 201)["id"]
