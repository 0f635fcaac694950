"""Seed benchmark data through the application's models, in the stack's environment (its database
and keys): what must be encrypted or hashed (e-mails, names, RUTs, passwords, TOTP secrets).

- ``python -m bench.seed user --email E --password P [--role R]``: a user made with
  ``users.create_user`` (what ``BenchStack.create_user`` runs); prints the new user's id.
- ``python -m bench.seed tenant --spec JSON``: an organization, its buildings (each with one
  unit), verified residents of the first building and optionally an org_admin with TOTP enrolled;
  prints the tenant as one line of JSON (ids, e-mails, passwords, the TOTP secret).

- ``python -m bench.seed webhook-endpoint --url U``: an organization with one operator webhook
  endpoint subscribed to every event type; prints ``{"organization_id", "endpoint_id", "secret"}``.
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
    events = commands.add_parser("events", help="N user.banned events of an organization, handed to the bus")
    events.add_argument("--organization-id", required=True)
    events.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "user":
        return _user(args)
    if args.command == "webhook-endpoint":
        print(json.dumps(_webhook_endpoint(args.url)))
        return 0
    if args.command == "events":
        print(_events(args.organization_id, args.count))
        return 0
    print(json.dumps(_tenant(json.loads(args.spec))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
