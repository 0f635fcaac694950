"""Seed benchmark data through the application's models, in the stack's environment (its database
and keys): what must be encrypted or hashed (e-mails, names, RUTs, passwords, TOTP secrets).

- ``python -m bench.seed user --email E --password P [--role R]``: a user made with
  ``users.create_user`` (what ``BenchStack.create_user`` runs); prints the new user's id.
- ``python -m bench.seed tenant --spec JSON``: an organization, its buildings (each with one
  unit), verified residents of the first building and optionally an org_admin with TOTP enrolled;
  prints the tenant as one line of JSON (ids, e-mails, passwords, the TOTP secret).

- ``python -m bench.seed webhook-endpoint --url U``: an organization with one operator webhook
  endpoint subscribed to every event type; prints ``{"organization_id", "endpoint_id", "secret"}``.
- ``python -m bench.seed people --building-id B --unit-id U --count N --rut-base R --created-days-ago D
  --booking-every K``: N users, each with a verified resident profile of the building (e-mail, names,
  RUT and phone encrypted with the run's keyring, blind indexes computed with its key), and a
  past ``checked_out`` booking with visitor data for every K-th of them on the building's oldest
  available blocks (the ``anonymize`` scenario). Rows are encrypted in one Python loop and loaded
  with ``COPY``, never row by row through the ORM; prints ``{"users", "bookings", "seconds"}``.
- ``python -m bench.seed events --organization-id O --count N``: N ``user.banned`` events of the
  organization, recorded with ``app.events.record`` in units of work of 100 and handed over to
  the bus after each commit, exactly as a service's change would be (the ``events`` scenario).

Spots, blocks and pricing rules are not made here: they carry nothing encrypted, so the scenarios
insert them set-based with SQL (``bench/tenant.py``). Residents are few (the scenarios log in at
most about fifty): they are made one by one, but share one argon2 hash computed once at production
cost (each still has its own e-mail, RUT and ciphertexts), so seeding does not spend a minute
hashing the same password.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import uuid
from typing import Any


def _user(args: argparse.Namespace) -> int:
    from app import create_app
    from app.services import audit, users
    from app.unit_of_work import unit_of_work
    from config.settings import Settings

    app = create_app(Settings.from_env())
    with app.app_context():
        with unit_of_work():
            user_id = users.create_user(args.email, args.password, audit.Actor.system(), platform_role=args.role).id
        print(user_id)
    return 0


def _valid_rut(body: int) -> str:
    from app.domain.identity import normalize_rut, rut_check_digit

    return normalize_rut(f"{body}-{rut_check_digit(str(body))}")


def _tenant(spec: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import func

    from app import create_app
    from app.extensions import db
    from app.models import Building, Membership, Organization, Resident, Unit, User
    from app.security import totp
    from app.security.crypto import blind_index
    from app.security.passwords import current_passwords
    from config.settings import Settings

    label = spec.get("label") or "bench"
    tag = uuid.uuid4().hex[:8]
    app = create_app(Settings.from_env())
    with app.app_context():
        organization = Organization(name=f"Bench {label} {tag}")
        db.session.add(organization)
        db.session.flush()
        buildings: list[dict[str, str]] = []
        for index in range(int(spec.get("buildings", 1))):
            building = Building(
                organization_id=organization.id,
                name=f"Bench {label} tower {index + 1}",
                address=f"Av. Benchmark {index + 1}",
                timezone=spec.get("timezone") or "America/Santiago",
                contact_email="ops@bench.estacionate.test",
                default_base_price_clp=int(spec.get("base_price_clp", 5000)),
                max_upcoming_bookings_per_resident=int(spec.get("max_upcoming", 2)),
            )
            db.session.add(building)
            db.session.flush()
            unit = Unit(building_id=building.id, unit_number="101")
            db.session.add(unit)
            db.session.flush()
            buildings.append({"id": str(building.id), "unit_id": str(unit.id)})

        residents: list[dict[str, str]] = []
        count = int(spec.get("residents", 0))
        if count:
            password = secrets.token_urlsafe(18)
            shared_hash = current_passwords().hash(password)  # production cost, once
            first = buildings[0]
            rut_base = 10_000_000 + secrets.randbelow(1_500_000) * 50
            for index in range(count):
                email = f"bench-resident-{tag}-{index}@bench.estacionate.test"
                user = User(email=email, email_bidx=blind_index("email", email), password_hash=shared_hash)
                db.session.add(user)
                db.session.flush()
                rut = _valid_rut(rut_base + index)
                resident = Resident(
                    user_id=user.id,
                    building_id=uuid.UUID(first["id"]),
                    unit_id=uuid.UUID(first["unit_id"]),
                    first_name="Vecina",
                    last_name=f"Benchmark {index}",
                    rut=rut,
                    rut_bidx=blind_index("rut", rut),
                    verified_at=func.now(),
                )
                db.session.add(resident)
                db.session.flush()
                residents.append(
                    {"email": email, "password": password, "user_id": str(user.id), "resident_id": str(resident.id)}
                )

        staff: dict[str, str] | None = None
        if spec.get("staff"):
            email = f"bench-org-admin-{tag}@bench.estacionate.test"
            password = secrets.token_urlsafe(18)
            secret = totp.new_secret()
            user = User(
                email=email,
                email_bidx=blind_index("email", email),
                password_hash=current_passwords().hash(password),
                mfa_enabled=True,
                mfa_secret=secret,
            )
            db.session.add(user)
            db.session.flush()
            db.session.add(Membership(user_id=user.id, organization_id=organization.id, role="org_admin"))
            staff = {"email": email, "password": password, "totp_secret": secret, "user_id": str(user.id)}
        db.session.commit()
        return {
            "organization_id": str(organization.id),
            "buildings": buildings,
            "residents": residents,
            "staff": staff,
        }


def _webhook_endpoint(url: str) -> dict[str, str]:
    from app import create_app
    from app.jobs.webhooks import new_secret
    from app.models import Organization, WebhookEndpoint
    from app.unit_of_work import unit_of_work
    from config.settings import Settings

    app = create_app(Settings.from_env())
    with app.app_context(), unit_of_work() as uow:
        organization = Organization(name=f"Bench events {uuid.uuid4().hex[:8]}")
        uow.session.add(organization)
        uow.session.flush()
        endpoint = WebhookEndpoint(organization_id=organization.id, url=url, event_types=["*"], secret=new_secret())
        uow.session.add(endpoint)
        uow.session.flush()
        return {"organization_id": str(organization.id), "endpoint_id": str(endpoint.id), "secret": endpoint.secret}


def _events(organization_id: str, count: int, batch: int = 100) -> int:
    from app import create_app
    from app.events import record
    from app.unit_of_work import unit_of_work
    from config.settings import Settings

    app = create_app(Settings.from_env())
    with app.app_context():
        for start in range(0, count, batch):
            with unit_of_work():
                for _ in range(start, min(start + batch, count)):
                    subject = uuid.uuid4()
                    record(
                        "user.banned",
                        organization_id=uuid.UUID(organization_id),
                        building_id=None,
                        aggregate=("user", subject),
                        data={"user_id": str(subject)},
                    )
    return count


#: Stands in for a password hash: nobody logs in as these people, and anonymization clears it.
NOT_A_HASH = "bench-seeded-no-login"


def _copy(cur: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """``COPY table (columns) FROM STDIN`` (CSV): bytes as ``\\x`` hex, None as NULL."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["\\x" + v.hex() if isinstance(v, bytes) else ("" if v is None else v) for v in row])
    buffer.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)


_USER_COLUMNS = ("id", "email_encrypted", "email_bidx", "password_hash", "created_at", "updated_at")
_RESIDENT_COLUMNS = (
    "id", "user_id", "building_id", "unit_id", "first_name_encrypted", "last_name_encrypted",
    "rut_encrypted", "rut_bidx", "phone_encrypted", "phone_bidx", "verified_at", "created_at", "updated_at",
)  # fmt: skip
_BOOKING_COLUMNS = (
    "id", "block_id", "building_id", "spot_id", "resident_id", "status", "confirmation_code",
    "visitor_name_encrypted", "visitor_phone_encrypted", "vehicle_plate_encrypted", "plate_bidx",
    "base_price_clp", "multiplier", "price_clp", "commission_clp", "block_start", "block_end",
    "checked_in_at", "checked_out_at", "created_at", "updated_at",
)  # fmt: skip


def _people(args: argparse.Namespace) -> dict[str, Any]:
    """N residents (and every K-th one's past booking), encrypted in one loop, loaded with COPY."""
    import os
    import time
    from datetime import UTC, datetime, timedelta

    import psycopg2

    from app import create_app
    from app.security.crypto import blind_index, current_crypto
    from config.settings import Settings

    began = time.perf_counter()
    tag = uuid.uuid4().hex[:8]
    building, unit = args.building_id, args.unit_id
    created = (datetime.now(UTC) - timedelta(days=args.created_days_ago)).isoformat()
    app = create_app(Settings.from_env())
    with app.app_context():
        seal = current_crypto().keyring.encrypt
        conn = psycopg2.connect(os.environ["DATABASE_URL"])
        try:
            with conn, conn.cursor() as cur:
                wanted = args.count // args.booking_every if args.booking_every else 0
                cur.execute(
                    "SELECT id, spot_id, start_at, end_at, base_price_clp FROM availability_blocks"
                    " WHERE building_id = %s AND status = 'available' AND end_at < now() ORDER BY start_at, spot_id"
                    " LIMIT %s",
                    (building, wanted),
                )
                blocks = cur.fetchall()
                if len(blocks) < wanted:
                    raise SystemExit(f"the building has {len(blocks)} past blocks, {wanted} bookings wanted")
                users, residents, bookings = [], [], []
                for index in range(args.count):
                    user_id, resident_id = uuid.uuid4(), uuid.uuid4()
                    email = f"anon-{tag}-{index}@bench.estacionate.test"
                    rut = _valid_rut(args.rut_base + index)
                    phone = f"+569{(args.rut_base + index) % 100_000_000:08d}"
                    users.append(
                        (
                            user_id,
                            seal(email.encode(), "users.email"),
                            blind_index("email", email),
                            NOT_A_HASH,
                            created,
                            created,
                        )
                    )
                    residents.append(
                        (
                            resident_id, user_id, building, unit,
                            seal(b"Vecina", "residents.first_name"),
                            seal(f"Borrable {index}".encode(), "residents.last_name"),
                            seal(rut.encode(), "residents.rut"), blind_index("rut", rut),
                            seal(phone.encode(), "residents.phone"), blind_index("phone", phone),
                            created, created, created,
                        )
                    )  # fmt: skip
                    if args.booking_every and index % args.booking_every == 0 and index // args.booking_every < wanted:
                        block_id, spot_id, start_at, end_at, base = blocks[index // args.booking_every]
                        plate = f"AN{index % 1_000_000:06d}"
                        bookings.append(
                            (
                                uuid.uuid4(), block_id, building, spot_id, resident_id,
                                "checked_out", f"AN-{tag}-{index}",
                                seal(f"Visita {index}".encode(), "bookings.visitor_name"),
                                seal(phone.encode(), "bookings.visitor_phone"),
                                seal(plate.encode(), "bookings.vehicle_plate"),
                                blind_index("plate", plate, scope=str(building)),
                                base, 1, base, 0, start_at, end_at, start_at, end_at, created, created,
                            )
                        )  # fmt: skip
                _copy(cur, "users", _USER_COLUMNS, users)
                _copy(cur, "residents", _RESIDENT_COLUMNS, residents)
                _copy(cur, "bookings", _BOOKING_COLUMNS, bookings)
                cur.execute(
                    "UPDATE availability_blocks SET status = 'reserved', version = version + 1"
                    " WHERE id = ANY(%s::uuid[])",
                    ([str(b[0]) for b in blocks],),
                )
        finally:
            conn.close()
    return {"users": len(users), "bookings": len(bookings), "seconds": round(time.perf_counter() - began, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    user = commands.add_parser("user", help="one user through users.create_user; prints its id")
    user.add_argument("--email", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--role", default=None, help="platform role, e.g. platform_admin")
    tenant = commands.add_parser("tenant", help="an organization with buildings, residents, staff; prints JSON")
    tenant.add_argument(
        "--spec",
        required=True,
        help='JSON: {"label", "buildings", "residents", "staff", "max_upcoming", "base_price_clp", "timezone"}',
    )
    endpoint = commands.add_parser("webhook-endpoint", help="an organization with one '*' endpoint; prints JSON")
    endpoint.add_argument("--url", required=True)
    people = commands.add_parser("people", help="N residents with encrypted data set-based (COPY); prints JSON")
    people.add_argument("--building-id", required=True)
    people.add_argument("--unit-id", required=True)
    people.add_argument("--count", type=int, required=True)
    people.add_argument("--rut-base", type=int, required=True, help="RUT body of the first (then +1 each)")
    people.add_argument("--created-days-ago", type=int, default=400)
    people.add_argument("--booking-every", type=int, default=10, help="every K-th gets a past booking (0: none)")
    events = commands.add_parser("events", help="N user.banned events of an organization, handed to the bus")
    events.add_argument("--organization-id", required=True)
    events.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "user":
        return _user(args)
    if args.command == "webhook-endpoint":
        print(json.dumps(_webhook_endpoint(args.url)))
        return 0
    if args.command == "people":
        print(json.dumps(_people(args)))
        return 0
    if args.command == "events":
        print(_events(args.organization_id, args.count))
        return 0
    print(json.dumps(_tenant(json.loads(args.spec))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
