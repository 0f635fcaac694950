"""People with unique, recognisable personal data, for the privacy tests' scans (anonymization, export)."""

from __future__ import annotations

import random
import string
import uuid

from app.domain.identity import rut_check_digit


def fresh_rut() -> tuple[str, list[str]]:
    """A valid RUT and the three ways people write it (12.345.678-5, 12345678-5, 123456785)."""
    body = str(10_000_000 + random.randrange(89_999_999))
    digit = rut_check_digit(body)
    dotted = f"{body[:-6]}.{body[-6:-3]}.{body[-3:]}-{digit}"
    return f"{body}-{digit}", [dotted, f"{body}-{digit}", f"{body}{digit}"]


def fresh_plate() -> str:
    return "".join(random.choices("BCDFGHJKLPRSTVWXYZ", k=4)) + "".join(random.choices(string.digits, k=2))


def fresh_phone() -> tuple[str, list[str]]:
    digits = "".join(random.choices(string.digits, k=8))
    return f"9 {digits[:4]} {digits[4:]}", [f"+569{digits}", f"9{digits}", f"{digits[:4]} {digits[4:]}"]


def person_in(stack, world, building_label="A1"):
    """A verified resident of A1 registered through the API, with unique names, RUT and phone."""
    tag = uuid.uuid4().hex[:8]
    rut, rut_forms = fresh_rut()
    phone, phone_forms = fresh_phone()
    person = {
        "email": f"erase-{tag}@home.test",
        "password": "resident-password",
        "first_name": f"Zoraida{tag}",
        "last_name": f"Quiroga{tag}",
        "rut": rut,
        "phone": phone,
        "building_id": world.a.buildings[building_label],
        "unit_number": "101",
    }
    registered = stack.client().post("/v1/auth/register", json=person)
    assert registered.status_code == 201, registered.get_json()
    resident_id = registered.get_json()["id"]
    assert stack.client().post(f"/v1/residents/{resident_id}/verify", headers=world.admin).status_code == 200
    person["resident_id"] = resident_id
    person["id"] = stack.sql("SELECT user_id::text FROM residents WHERE id = %s", (resident_id,))[0][0]
    person["needles"] = [person["email"], person["first_name"], person["last_name"], *rut_forms, *phone_forms]
    return person


def book(stack, headers, block_id, visitor):
    body = {"availability_block_id": block_id, **visitor}
    response = stack.client().post("/v1/bookings", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 202, response.get_json()
    job = stack.wait_job(headers, response.get_json()["job_id"])
    assert job["status"] == "succeeded", job
    return job["result"]["booking"]


def place_booking(stack, block_id, person, *, plate="BCDF12"):
    """A confirmed booking of ``block_id`` for ``person``, written directly (they need not log in); its id."""
    from app.extensions import db
    from app.models import AvailabilityBlock, Booking, Resident

    with stack.context():
        block = db.session.get(AvailabilityBlock, uuid.UUID(block_id))
        resident = db.session.query(Resident).filter_by(user_id=uuid.UUID(person["id"])).one()
        block.status = "reserved"
        booking = Booking(
            block_id=block.id,
            building_id=block.building_id,
            spot_id=block.spot_id,
            resident_id=resident.id,
            status="confirmed",
            confirmation_code=uuid.uuid4().hex[:10].upper(),
            visitor_name="Visita",
            vehicle_plate=plate,
            plate_bidx=b"-",
            base_price_clp=5000,
            multiplier=1,
            price_clp=5000,
            commission_clp=500,
            block_start=block.start_at,
            block_end=block.end_at,
        )
        db.session.add(booking)
        db.session.commit()
        return str(booking.id)
