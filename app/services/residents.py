"""Residents: self sign-up (unverified), listing for the building's staff, verification."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.domain.events import EventType
from app.domain.identity import InvalidIdentity, normalize_phone, normalize_rut
from app.extensions import db
from app.models import Building, Resident, ResidentStatus, Unit, User
from app.models.pagination import paginate
from app.problems import Problem
from app.security.crypto import blind_index
from app.security.rbac import Capability, Principal
from app.services import audit, domain_events, users
from app.services.organizations import building_of, get_building
from app.unit_of_work import stored


@dataclass(frozen=True)
class Registration:
    email: str
    password: str
    first_name: str
    last_name: str
    rut: str
    phone: str | None
    building_id: uuid.UUID
    unit_number: str


def _invalid(pointer: str, detail: str) -> Problem:
    return Problem("validation-error", detail, errors=[{"pointer": pointer, "detail": detail}])


def register(form: Registration, actor: audit.Actor) -> Resident:
    """Create the user and an unverified resident profile; 409 if the e-mail or RUT is taken."""
    try:
        rut = normalize_rut(form.rut)
    except InvalidIdentity as exc:
        raise _invalid("/rut", str(exc)) from exc
    try:
        phone = normalize_phone(form.phone) if form.phone else None
    except InvalidIdentity as exc:
        raise _invalid("/phone", str(exc)) from exc
    users.check_password_policy(form.password)
    building = db.session.get(Building, form.building_id)
    unit = None
    if building is not None and building.is_active:
        unit = db.session.execute(
            select(Unit).where(Unit.building_id == building.id, Unit.unit_number == form.unit_number.strip())
        ).scalar_one_or_none()
    if unit is None:
        raise _invalid("/unit_number", "no such unit in that building")
    rut_bidx = blind_index("rut", rut)
    if db.session.execute(select(Resident.id).where(Resident.rut_bidx == rut_bidx)).first():
        raise Problem("conflict", "A resident with this RUT is already registered.")
    user = users.create_user(form.email, form.password, actor)
    resident = Resident(
        user_id=user.id,
        building_id=unit.building_id,
        unit_id=unit.id,
        first_name=form.first_name.strip(),
        last_name=form.last_name.strip(),
        rut=rut,
        rut_bidx=rut_bidx,
        phone=phone,
        phone_bidx=blind_index("phone", phone) if phone else None,
    )
    db.session.add(resident)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same RUT
        raise Problem("conflict", "A resident with this RUT is already registered.") from exc
    audit.record(
        "resident.registered",
        audit.Actor("human", user.id, actor.ip, actor.user_agent),
        entity_type="resident",
        entity_id=resident.id,
        details={"building_id": str(unit.building_id)},
    )
    domain_events.resident_changed(
        EventType.RESIDENT_REGISTERED, resident, ResidentStatus.PENDING_VERIFICATION, building.organization_id
    )
    return stored(resident)


def list_residents(
    principal: Principal,
    building_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
    actor: audit.Actor,
) -> tuple[list[tuple[Resident, str, str]], str | None]:
    get_building(principal, building_id, Capability.STAFF_READ)
    query = select(Resident).where(Resident.building_id == building_id)
    if status == "verified":
        query = query.where(Resident.verified_at.is_not(None))
    elif status == "pending_verification":
        query = query.where(Resident.verified_at.is_(None))
    residents, next_cursor = paginate(query, [Resident.created_at, Resident.id], limit=limit, cursor=cursor)
    audit.record_support_read(principal, actor, "building.residents", building_id)
    return with_contacts(residents), next_cursor


def with_contacts(residents: list[Resident]) -> list[tuple[Resident, str, str]]:
    """Each resident with their unit number and e-mail (decrypted), for staff views: one query for all."""
    if not residents:
        return []
    rows = db.session.execute(
        select(Resident.id, Unit.unit_number, User.email)
        .join(Unit, Unit.id == Resident.unit_id)
        .join(User, User.id == Resident.user_id)
        .where(Resident.id.in_([r.id for r in residents]))
    ).all()
    contact = {row.id: (row.unit_number, row.email) for row in rows}
    return [(r, *contact[r.id]) for r in residents]


def with_contact(resident: Resident) -> tuple[Resident, str, str]:
    return with_contacts([resident])[0]


def verify(principal: Principal, resident_id: uuid.UUID, actor: audit.Actor) -> tuple[Resident, str, str]:
    resident = db.session.get(Resident, resident_id, with_for_update=True)
    building = building_of(principal, resident, Capability.MANAGE, missing="No such resident.")
    assert resident is not None
    if resident.verified_at is None:
        resident.verified_at = db.func.now()
        resident.verified_by = principal.user_id
        audit.record("resident.verified", actor, entity_type="resident", entity_id=resident.id)
        domain_events.resident_changed(
            EventType.RESIDENT_VERIFIED, resident, ResidentStatus.VERIFIED, building.organization_id
        )
    return with_contact(db.session.get(Resident, resident_id, populate_existing=True))  # type: ignore[arg-type]
