"""Demo data for ``make run`` (``flask seed-demo``): two operators side by side, so tenant
isolation is visible from the first login. Idempotent: rows are looked up by name or e-mail
before being created. Refused in production (the CLI checks)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.models import Building, Membership, Organization, PlatformRole, Resident, Unit, VisitorSpot
from app.security.crypto import blind_index
from app.services import audit, users
from app.services.availability_generation import generate_for_building

ACTOR = audit.Actor.system()
PASSWORD = "demo-password-123"  # noqa: S105 (development demo data only)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str


@dataclass(frozen=True)
class DemoTenant:
    organization: str
    building: str
    address: str
    slug: str
    resident_rut: str


TENANTS = (
    DemoTenant("Inmobiliaria Andes", "Torre Andes", "Av. Apoquindo 3000, Las Condes", "andes", "11.111.111-1"),
    DemoTenant("Gestión Pacífico", "Edificio Pacífico", "Av. Perú 500, Viña del Mar", "pacifico", "12.345.678-5"),
)


def _user(email: str, password: str, role: str | None = None) -> tuple[str, bool]:
    existing = users.find_by_email(email)
    if existing is not None:
        return str(existing.id), False
    return str(users.create_user(email, password, ACTOR, platform_role=role).id), True


def _tenant(spec: DemoTenant) -> list[DemoLogin]:
    organization = db.session.execute(select(Organization).where(Organization.name == spec.organization)).scalar()
    if organization is None:
        organization = Organization(name=spec.organization)
        db.session.add(organization)
        db.session.flush()
    building = db.session.execute(
        select(Building).where(Building.organization_id == organization.id, Building.name == spec.building)
    ).scalar()
    if building is None:
        building = Building(
            organization_id=organization.id,
            name=spec.building,
            address=spec.address,
            contact_email=f"conserjeria@{spec.slug}.demo.estacionate.cl",
        )
        db.session.add(building)
        db.session.flush()
    units = {}
    for number in ("101", "102", "201", "202"):
        unit = db.session.execute(
            select(Unit).where(Unit.building_id == building.id, Unit.unit_number == number)
        ).scalar()
        if unit is None:
            unit = Unit(building_id=building.id, unit_number=number, floor=int(number[0]))
            db.session.add(unit)
            db.session.flush()
        units[number] = unit
    for number in ("V1", "V2", "V3"):
        if not db.session.execute(
            select(VisitorSpot.id).where(VisitorSpot.building_id == building.id, VisitorSpot.spot_number == number)
        ).first():
            db.session.add(VisitorSpot(building_id=building.id, spot_number=number))
    db.session.flush()

    logins = []
    for role in ("org_admin", "building_admin", "concierge"):
        email = f"{role.replace('_', '-')}@{spec.slug}.demo.estacionate.cl"
        user_id, created = _user(email, PASSWORD)
        if created:
            membership = Membership(user_id=user_id, organization_id=organization.id, role=role)
            membership.buildings = [] if role == "org_admin" else [building]
            db.session.add(membership)
        logins.append(DemoLogin(email, PASSWORD, f"{role} of {spec.organization}; enrolls MFA at first login"))
    email = f"residente@{spec.slug}.demo.estacionate.cl"
    user_id, created = _user(email, PASSWORD)
    if created:
        from app.domain.identity import normalize_rut

        rut = normalize_rut(spec.resident_rut)
        db.session.add(
            Resident(
                user_id=user_id,
                building_id=building.id,
                unit_id=units["101"].id,
                first_name="Residente",
                last_name=spec.building,
                rut=rut,
                rut_bidx=blind_index("rut", rut),
                phone="+56912345678",
                phone_bidx=blind_index("phone", "+56912345678"),
                verified_at=db.func.now(),
            )
        )
    logins.append(DemoLogin(email, PASSWORD, f"verified resident, {spec.building} 101"))
    db.session.flush()
    generate_for_building(building.id)
    return logins


def seed() -> list[DemoLogin]:
    """Create (or find) the demo platform accounts and both operators (in the caller's unit of work); the logins."""
    logins = []
    for email, password, role, label in (
        (
            "admin@demo.estacionate.cl",
            "demo-admin-password",
            PlatformRole.PLATFORM_ADMIN,
            "platform_admin; enrolls MFA at first login",
        ),
        ("user@demo.estacionate.cl", "demo-user-password", None, "plain user"),
    ):
        _user(email, password, role)
        logins.append(DemoLogin(email, password, label))
    for spec in TENANTS:
        logins.extend(_tenant(spec))
    audit.record("demo.seeded", ACTOR)
    return logins
