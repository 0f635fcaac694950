"""The tenant-isolation matrix's harness: the acceptance test of the tenancy issue.

The table lives beside its tests, one module per resource (tests/integration/api/isolation/
test_<resource>.py, each a ``MATRIX`` and a ``test_isolation_matrix`` that runs ``run_case`` on every
case); every ``/v1`` endpoint of the URL map has an entry in one of them (a new endpoint without one,
or a stale entry, fails ``test_coverage.test_every_v1_endpoint_has_a_matrix_entry``). This module is
what they share: the callers, the expectation profiles, the context the cases run in, the aims,
snapshots and content checks, and the run of one case. Tenant-scoped entries say how
to aim the request at a row of the target organization, which body to send (valid, so that a
wrongful pass would really change something) and what every kind of caller must get:

- out of scope (another organization's staff or residents, a building_admin of another building of
  the same organization, a resident who is not the booker): 404, the same document as for an id
  that does not exist (no existence oracle);
- in scope but the role lacks the capability (a concierge managing, a resident reading residents,
  support writing): 403;
- anonymous: 401;
- the rightful callers: 2xx, with content checks that lists and stats hold only what they may see.
  Job-creating endpoints are followed to the job's end (``Job``): success, or the typed refusal.

Every refused answer (and failed job) is ``application/problem+json`` naming nothing of the target
organization beyond what the caller sent, and a refused write changes nothing (read back with SQL
before and after; a successful one must change what was read). Every successful answer holds
nothing of organizations, buildings or people outside the caller's scope.

Targets: reads aim at the shared world's organization A (``world.a``: building A1, or A2 for the
building_admin of A1 "on another building"). Writes aim at a private organization P of the same
shape built here, so that a write that wrongly succeeds cannot corrupt the session-wide world other
tests share; rows a write needs in a given state (an available or blocked block, a pending
resident) are created fresh for each case. Bookings live in a second private organization Q
(bookings need a Celery worker, a second resident of Q1 who is not the booker, a resident of Q2 and
blocks within 30 days, none of which the world has). The other organization is always ``world.b``.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.world import Tenant, World, build_tenant, valid_rut

PROBLEM = "application/problem+json"
PROBLEM_TYPES = {401: "/problems/unauthenticated", 403: "/problems/forbidden", 404: "/problems/not-found"}
PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

# --- callers -------------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
OTHER_ORG_ADMIN = "org_admin_of_other_org"
OTHER_ORG_BUILDING_ADMIN = "building_admin_of_other_org"
OTHER_ORG_CONCIERGE = "concierge_of_other_org"
OTHER_ORG_RESIDENT = "resident_of_other_org"
OTHER_BUILDING_ADMIN = "building_admin_of_other_building"  # building_admin of A1 aiming at A2
OTHER_BUILDING_RESIDENT = "resident_of_other_building"  # resident of Q2 aiming at Q1
NEIGHBOUR = "other_resident_of_building"  # a resident of Q1 who is not the booker
CONCIERGE = "concierge_of_building"
RESIDENT = "resident_of_building"  # in Q1: the booker
SUPPORT = "support"
ORG_ADMIN = "org_admin"
BUILDING_ADMIN = "building_admin"
PLATFORM_ADMIN = "platform_admin"

OTHER_ORG = {
    OTHER_ORG_ADMIN: "org_admin",
    OTHER_ORG_BUILDING_ADMIN: "building_admin",
    OTHER_ORG_CONCIERGE: "concierge",
    OTHER_ORG_RESIDENT: "resident",
}
SAME_ORG = {
    OTHER_BUILDING_ADMIN: "building_admin",
    OTHER_BUILDING_RESIDENT: "resident_2",
    NEIGHBOUR: "neighbour",
    CONCIERGE: "concierge",
    RESIDENT: "resident",
    ORG_ADMIN: "org_admin",
    BUILDING_ADMIN: "building_admin",
}
RESIDENT_ROLES = ("resident", "neighbour", "resident_2")
#: Callers tied to one building only: the first, or (resident of Q2) the second.
FIRST_BUILDING_ONLY = {BUILDING_ADMIN, OTHER_BUILDING_ADMIN, CONCIERGE, RESIDENT, NEIGHBOUR}
SECOND_BUILDING_ONLY = {OTHER_BUILDING_RESIDENT}


@dataclass(frozen=True)
class Job:
    """202, then the job ends: succeeded (``error=None``), or failed with ``/problems/<error>``."""

    error: str | None = None


Outcome = int | Job
Expected = Outcome | tuple[Outcome, ...]


def options(expected: Expected) -> tuple[Outcome, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def http_status(outcome: Outcome) -> int:
    return 202 if isinstance(outcome, Job) else outcome


def succeeds(expected: Expected) -> bool:
    return any(
        (isinstance(o, Job) and o.error is None) or (isinstance(o, int) and 200 <= o < 300) for o in options(expected)
    )


# --- expectation profiles (caller -> outcome); entries use one, overriding where they must ---------

_OUT_OF_SCOPE: dict[str, Expected] = {
    ANONYMOUS: 401,
    OTHER_ORG_ADMIN: 404,
    OTHER_ORG_BUILDING_ADMIN: 404,
    OTHER_ORG_CONCIERGE: 404,
    OTHER_ORG_RESIDENT: 404,
}
#: ``view`` a building: anyone tied to it.
BUILDING_VIEW: dict[str, Expected] = {
    **_OUT_OF_SCOPE,
    OTHER_BUILDING_ADMIN: 404,
    CONCIERGE: 200,
    RESIDENT: 200,
    SUPPORT: 200,
    ORG_ADMIN: 200,
    BUILDING_ADMIN: 200,
    PLATFORM_ADMIN: 200,
}
#: ``staff_read`` a building (residents, stats): its managers and support.
BUILDING_STAFF_READ: dict[str, Expected] = {**BUILDING_VIEW, CONCIERGE: 403, RESIDENT: 403}


def building_manage(ok: int) -> dict[str, Expected]:
    """``manage`` a building: its managers; support, concierges and residents are refused (403)."""
    return {
        **BUILDING_VIEW,
        CONCIERGE: 403,
        RESIDENT: 403,
        SUPPORT: 403,
        ORG_ADMIN: ok,
        BUILDING_ADMIN: ok,
        PLATFORM_ADMIN: ok,
    }


#: ``view`` an organization: its staff (any membership) and support; residents have no tie to it.
ORGANIZATION_VIEW: dict[str, Expected] = {
    **_OUT_OF_SCOPE,
    BUILDING_ADMIN: 200,
    CONCIERGE: 200,
    RESIDENT: 404,
    SUPPORT: 200,
    ORG_ADMIN: 200,
    PLATFORM_ADMIN: 200,
}


def organization_manage(ok: int) -> dict[str, Expected]:
    return {**ORGANIZATION_VIEW, BUILDING_ADMIN: 403, CONCIERGE: 403, SUPPORT: 403, ORG_ADMIN: ok, PLATFORM_ADMIN: ok}


def platform_only(ok: int) -> dict[str, Expected]:
    """Nobody but a platform_admin. A refusal before any lookup (403) or as out of scope (404) leaks nothing."""
    refused = (403, 404)
    return {
        ANONYMOUS: 401,
        OTHER_ORG_ADMIN: refused,
        OTHER_ORG_BUILDING_ADMIN: refused,
        OTHER_ORG_CONCIERGE: refused,
        OTHER_ORG_RESIDENT: refused,
        BUILDING_ADMIN: refused,
        CONCIERGE: refused,
        RESIDENT: refused,
        SUPPORT: refused,
        PLATFORM_ADMIN: ok,
    }


#: A booking: its booker, and the staff of its building (gate or staff_read); nobody else sees it.
BOOKING_VIEW: dict[str, Expected] = {
    **_OUT_OF_SCOPE,
    OTHER_BUILDING_ADMIN: 404,
    OTHER_BUILDING_RESIDENT: 404,
    NEIGHBOUR: 404,
    RESIDENT: 200,
    CONCIERGE: 200,
    BUILDING_ADMIN: 200,
    ORG_ADMIN: 200,
    SUPPORT: 200,
    PLATFORM_ADMIN: 200,
}
#: The gate on a booking: concierges and managers of its building. Who may see the booking but not
#: work the gate (the booker, support) is refused (403); who may not see it gets 404.
BOOKING_GATE: dict[str, Expected] = {**BOOKING_VIEW, RESIDENT: 403, SUPPORT: 403}


# --- the context the cases run in ----------------------------------------------------------------


@dataclass
class Ctx:
    world: World
    own: Tenant  # P: writes
    bookings: Tenant  # Q: bookings
    counter: Any = field(default_factory=itertools.count)
    secrets_by_org: dict[str, set[str]] = field(default_factory=dict)
    building_secrets: dict[str, set[str]] = field(default_factory=dict)  # building id -> its strings
    person_pii: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (org id, role) -> e-mail, RUT
    person_bookings: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (org id, role) -> bookings
    names: dict[str, str] = field(default_factory=dict)  # organization/building id -> name
    shared: dict[str, dict[str, Any]] = field(default_factory=dict)  # Q building id -> a booking there
    shared_start: str = ""
    world_window: str = ""

    @property
    def tenants(self) -> list[Tenant]:
        return [self.world.a, self.world.b, self.own, self.bookings]

    def tenant(self, name: str) -> Tenant:
        return {"world": self.world.a, "own": self.own, "bookings": self.bookings}[name]

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}-{uuid.uuid4().hex[:6]}"

    def call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
        kwargs = {} if body is None else {"json": body}
        return self.world.call(method.lower(), path, headers, **kwargs)

    def admin(self, method: str, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        response = self.call(method, path, self.world.admin, body)
        assert response.status_code == status, (method, path, response.status_code, response.get_json())
        return response.get_json()

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.world.stack.sql(query, params)

    def headers(self, caller: str, tenant: Tenant) -> dict[str, str]:
        if caller == ANONYMOUS:
            return {}
        if caller == SUPPORT:
            return self.world.support
        if caller == PLATFORM_ADMIN:
            return self.world.admin
        if caller in OTHER_ORG:
            return self.world.b.headers[OTHER_ORG[caller]]
        return tenant.headers[SAME_ORG[caller]]

    def hidden(self, caller: str, tenant: Tenant, everywhere: bool) -> set[str]:
        """Strings of rows the caller may not see while acting on ``tenant``.

        ``everywhere``: the endpoint is not about ``tenant`` (a caller's own list), so platform
        staff legitimately see every organization in it.
        """
        if caller in (SUPPORT, PLATFORM_ADMIN) and everywhere:
            return set()
        home = self.world.b if caller in OTHER_ORG else tenant
        hidden: set[str] = set()
        for other in self.tenants:
            if other.organization_id != home.organization_id:
                hidden |= self.secrets_by_org[other.organization_id]
        if caller not in SAME_ORG:
            return hidden
        mine = labels(tenant)[:1] if caller in FIRST_BUILDING_ONLY else labels(tenant)[1:2]
        if caller in FIRST_BUILDING_ONLY | SECOND_BUILDING_ONLY:
            for label in labels(tenant):
                if label not in mine:
                    hidden |= self.building_secrets[tenant.buildings[label]]
        org, me = tenant.organization_id, SAME_ORG[caller]
        if caller == CONCIERGE:  # gate staff never see residents' personal data
            for role in RESIDENT_ROLES:
                hidden |= self.person_pii.get((org, role), set())
        if me in RESIDENT_ROLES:  # a resident sees nothing of other residents
            for role in RESIDENT_ROLES:
                if role != me:
                    hidden |= self.person_pii.get((org, role), set()) | self.person_bookings.get((org, role), set())
        return hidden


def labels(tenant: Tenant) -> list[str]:
    return list(tenant.buildings)


def add_resident(ctx: Ctx, tenant: Tenant, label: str, role: str) -> None:
    """Another verified resident (unit 101 of ``label``), logged in as ``tenant.headers[role]``."""
    form = {
        "email": f"{ctx.unique(role + '-')}@home.test",
        "password": "resident-password",
        "first_name": "Tomás",
        "last_name": "Rojas",
        "rut": valid_rut(),
        "building_id": tenant.buildings[label],
        "unit_number": "101",
    }
    response = ctx.world.call("post", "/v1/auth/register", json=form)
    assert response.status_code == 201, response.get_json()
    ctx.admin("POST", f"/v1/residents/{response.get_json()['id']}/verify")
    tenant.residents.setdefault(label, response.get_json()["id"])
    tenant.people[role] = form
    tenant.headers[role] = ctx.world.stack.login(form)


def _collect_secrets(ctx: Ctx) -> None:
    for tenant in ctx.tenants:
        org_id = tenant.organization_id
        ctx.names[org_id] = ctx.admin("GET", f"/v1/organizations/{org_id}")["name"]
        strings = {org_id, ctx.names[org_id]}
        for label, building_id in tenant.buildings.items():
            ctx.names[building_id] = ctx.admin("GET", f"/v1/buildings/{building_id}")["name"]
            mine = {building_id, ctx.names[building_id]}
            for rows in (tenant.units, tenant.spots, tenant.blocks, tenant.residents):
                if label in rows:
                    mine.add(rows[label])
            for role in RESIDENT_ROLES:
                person = tenant.people.get(role)
                if person is not None and person["building_id"] == building_id:
                    ctx.person_pii[(org_id, role)] = {person["email"].lower(), person["rut"]}
                    mine |= ctx.person_pii[(org_id, role)]
            ctx.building_secrets[building_id] = mine
            strings |= mine
        for person in tenant.people.values():
            strings.add(person["email"].lower())
        ctx.secrets_by_org[org_id] = strings


def build_ctx(world: World) -> Ctx:
    """The private organizations P and Q, extra residents, the strings each scope hides, two shared bookings.

    Built once per run of the matrix (the ``ctx`` fixture of tests/integration/api/isolation/);
    the bookings need the session's Celery worker running.
    """
    own = build_tenant(world.stack, world.admin, f"Org P {uuid.uuid4().hex[:6]}", ["P1", "P2"])
    bookings = build_tenant(world.stack, world.admin, f"Org Q {uuid.uuid4().hex[:6]}", ["Q1", "Q2"])
    context = Ctx(world, own, bookings)
    add_resident(context, bookings, "Q1", "neighbour")
    add_resident(context, bookings, "Q2", "resident_2")
    for building_id in bookings.buildings.values():  # many cases book as the same resident
        context.admin("PATCH", f"/v1/buildings/{building_id}", {"max_upcoming_bookings_per_resident": 1000})
    _collect_secrets(context)
    starts = [
        row[0]
        for row in context.sql(
            "SELECT start_at FROM availability_blocks WHERE id = ANY(%s::uuid[])", [*world.a.blocks.values()]
        )
    ]
    context.world_window = f"?from={iso(min(starts))}&to={iso(max(starts) + timedelta(seconds=1))}"
    start = (datetime.now(UTC) + timedelta(days=2)).replace(second=17, microsecond=0)
    context.shared_start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    for label, building_id in bookings.buildings.items():  # one booking per building, same instant
        context.shared[building_id] = fresh_booking(context, bookings, label, start=start)
    return context


# --- fresh rows and snapshots ----------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fresh_interval(ctx: Ctx) -> dict[str, Any]:
    """A future 11-hour interval no other case uses (one day each, from 2090)."""
    start = datetime(2090, 1, 1, 8, tzinfo=UTC) + timedelta(days=next(ctx.counter))
    return {"start": iso(start), "end": iso(start + timedelta(hours=11))}


def fresh_block(ctx: Ctx, tenant: Tenant, label: str, *, blocked: bool = False, start: datetime | None = None) -> str:
    """A new block; with ``start``, on a spot of its own (so any time is free)."""
    spot_id = tenant.spots[label]
    interval = fresh_interval(ctx)
    if start is not None:
        spot = ctx.admin(
            "POST", f"/v1/buildings/{tenant.buildings[label]}/spots", {"spot_number": ctx.unique("M")}, 201
        )
        spot_id, interval = spot["id"], {"start": iso(start), "end": iso(start + timedelta(hours=11))}
    block = ctx.admin(
        "POST", f"/v1/spots/{spot_id}/blocks", {**interval, "duration": "11h", "base_price_clp": 5000}, 201
    )
    if blocked:
        ctx.admin("POST", f"/v1/availability-blocks/{block['id']}/block")
    return block["id"]


def booker_of(tenant: Tenant, label: str) -> str:
    return "resident" if label == labels(tenant)[0] else "resident_2"


def booking_body(ctx: Ctx, block_id: str) -> dict[str, Any]:
    # "ZX" never occurs in lower-case hex ids, so the plate is a string no other field can contain
    return {
        "availability_block_id": block_id,
        "visitor_name": ctx.unique("Visitor "),
        "vehicle_plate": "ZX" + uuid.uuid4().hex[:6].upper(),
    }


def fresh_booking(
    ctx: Ctx, tenant: Tenant, label: str, *, start: datetime | None = None, checked_in: bool = False
) -> dict[str, Any]:
    """A confirmed booking by the resident of ``label``'s unit 101 (via the API and the worker)."""
    start = start or datetime.now(UTC) + timedelta(days=1)
    block_id = fresh_block(ctx, tenant, label, start=start)
    role = booker_of(tenant, label)
    response = ctx.call("POST", "/v1/bookings", tenant.headers[role], booking_body(ctx, block_id))
    assert response.status_code == 202, response.get_json()
    job = ctx.world.stack.wait_job(tenant.headers[role], response.get_json()["job_id"])
    assert job["status"] == "succeeded", job
    booking = job["result"]["booking"]
    strings = {booking["id"], booking["confirmation_code"], booking["visitor_name"], booking["vehicle_plate"]}
    ctx.secrets_by_org[tenant.organization_id] |= strings
    ctx.building_secrets[tenant.buildings[label]] |= strings
    ctx.person_bookings.setdefault((tenant.organization_id, role), set()).update(strings)
    if checked_in:
        ctx.admin("POST", f"/v1/bookings/{booking['id']}/check-in", {})
    return booking


@dataclass(frozen=True)
class Aim:
    """Where a case points: URL parameters, other ids a read-back needs, strings no refusal may show."""

    params: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()

    def ref(self, name: str) -> str:
        return self.params.get(name) or self.refs[name]


AimFn = Callable[[Ctx, Tenant, str], Aim]


def at_building(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    return Aim({"building_id": tenant.buildings[label]})


def at_organization(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    return Aim({"organization_id": tenant.organization_id})


def at_spot(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    return Aim({"spot_id": tenant.spots[label]}, secrets=frozenset({tenant.buildings[label]}))


def at_fresh_block(blocked: bool) -> AimFn:
    def aim(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
        return Aim({"block_id": fresh_block(ctx, tenant, label, blocked=blocked)})

    return aim


def at_fresh_pending_resident(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    resident_id, secrets = _register_pending(ctx, tenant, label)
    return Aim({"resident_id": resident_id}, secrets=frozenset(secrets))


def _register_pending(ctx: Ctx, tenant: Tenant, label: str) -> tuple[str, set[str]]:
    email, rut = f"{ctx.unique('pending-')}@home.test", valid_rut()
    form = {
        "email": email,
        "password": "resident-password",
        "first_name": "Pia",
        "last_name": "Soto",
        "rut": rut,
        "building_id": tenant.buildings[label],
        "unit_number": "101",
    }
    response = ctx.world.call("post", "/v1/auth/register", json=form)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"], {email, rut}


def at_fresh_user(banned: bool) -> AimFn:
    """A new (pending) resident's user account of the target building."""

    def aim(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
        resident_id, secrets = _register_pending(ctx, tenant, label)
        [(user_id,)] = ctx.sql("SELECT user_id::text FROM residents WHERE id = %s", resident_id)
        if banned:
            ctx.admin("POST", f"/v1/admin/users/{user_id}/ban", {})
        return Aim({"user_id": user_id}, secrets=frozenset({*secrets, resident_id}))

    return aim


def at_fresh_bookable_block(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    block_id = fresh_block(ctx, tenant, label, start=datetime.now(UTC) + timedelta(days=1))
    return Aim({}, refs={"block_id": block_id}, secrets=frozenset({block_id}))


def at_fresh_booking(*, soon: bool = False, checked_in: bool = False) -> AimFn:
    def aim(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
        start = datetime.now(UTC) + (timedelta(minutes=10) if soon else timedelta(days=1))
        booking = fresh_booking(ctx, tenant, label, start=start, checked_in=checked_in)
        strings = {booking["confirmation_code"], booking["visitor_name"], booking["vehicle_plate"]}
        return Aim({"booking_id": booking["id"]}, secrets=frozenset(strings))

    return aim


def at_shared_booking(in_url: bool) -> AimFn:
    def aim(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
        booking = ctx.shared[tenant.buildings[label]]
        return Aim({"booking_id": booking["id"]} if in_url else {}, refs={"booking_id": booking["id"]})

    return aim


def rule_body(ctx: Ctx) -> dict[str, Any]:
    start = datetime(2091, 1, 1, tzinfo=UTC) + timedelta(days=next(ctx.counter))
    return {
        "name": ctx.unique("Rule "),
        "priority": 5,
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=6)),
        "multiplier": "1.5",
    }


def at_fresh_rule(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    rule = ctx.admin("POST", f"/v1/buildings/{tenant.buildings[label]}/pricing-rules", rule_body(ctx), 201)
    return Aim({"rule_id": rule["id"]})


def at_world_block(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    return Aim({"block_id": tenant.blocks[label]})


def at_building_ref(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    """The building is named in the body or the query string, not in the path."""
    return Aim({}, refs={"building_id": tenant.buildings[label]}, secrets=frozenset({tenant.buildings[label]}))


def plate_ban(ctx: Ctx, building_id: str) -> dict[str, Any]:
    return {"type": "plate", "value": "ZX" + uuid.uuid4().hex[:6].upper(), "building_id": building_id}


def at_building_ref_with_entries(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    """The building (in the query string), with a fresh global, organization-wide and building entry applying to it.

    ``refs`` names the three entries by scope; their values are secrets no refusal may show. The
    plates start with "ZW": no booking of the suite uses it (the matrix books "ZX" plates).
    """
    building_id = tenant.buildings[label]
    where = {"global": {}, "organization": {"organization_id": tenant.organization_id}}
    where["building"] = {"building_id": building_id}
    made = {
        scope: ctx.admin(
            "POST", "/v1/blocklist", {"type": "plate", "value": "ZW" + uuid.uuid4().hex[:6].upper(), **at}, 201
        )
        for scope, at in where.items()
    }
    refs = {"building_id": building_id, **{f"{scope}_entry": entry["id"] for scope, entry in made.items()}}
    return Aim({}, refs=refs, secrets=frozenset({building_id, *(entry["value"] for entry in made.values())}))


def at_fresh_entry(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    entry = ctx.admin("POST", "/v1/blocklist", plate_ban(ctx, tenant.buildings[label]), 201)
    return Aim({"entry_id": entry["id"]})


def nothing(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    return Aim({})


Snapshot = Callable[[Ctx, Tenant, Aim], Any]


def snap(query: str, ref: str | None = None) -> Snapshot:
    """A SQL read-back of what a write would change (``ref``: the id it is about)."""

    def snapshot(ctx: Ctx, tenant: Tenant, aim: Aim) -> Any:
        return ctx.sql(query, aim.ref(ref)) if ref else ctx.sql(query)

    return snapshot


def snap_org(query: str) -> Snapshot:
    def snapshot(ctx: Ctx, tenant: Tenant, aim: Aim) -> Any:
        return ctx.sql(query, tenant.organization_id)

    return snapshot


def block_and_bookings(ctx: Ctx, tenant: Tenant, aim: Aim) -> Any:
    block_id = aim.ref("block_id")
    state = ctx.sql("SELECT status, version FROM availability_blocks WHERE id = %s", block_id)
    return state, ctx.sql("SELECT count(*) FROM bookings WHERE block_id = %s", block_id)


BOOKING_STATE = snap(
    "SELECT b.status, b.version, (SELECT count(*) FROM access_events e WHERE e.booking_id = b.id)"
    " FROM bookings b WHERE b.id = %s",
    "booking_id",
)


# --- content checks on successful answers ---------------------------------------------------------

Check = Callable[[Ctx, str, Tenant, str, Aim, Any], None]


def visible_buildings(caller: str, tenant: Tenant) -> set[str]:
    first = tenant.buildings[labels(tenant)[0]]
    return {first} if caller in FIRST_BUILDING_ONLY else set(tenant.buildings.values())


def check_exactly_visible(caller: str, tenant: Tenant, ids: set[str], wanted: set[str]) -> None:
    """Org-wide callers may see buildings added since the world was built; the others exactly theirs."""
    if caller in FIRST_BUILDING_ONLY:
        assert ids == wanted, (caller, ids, wanted)
    else:
        assert wanted <= ids, (caller, ids, wanted)


def check_organization(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert body["id"] == tenant.organization_id


def check_organization_buildings(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert {item["organization_id"] for item in body["items"]} <= {tenant.organization_id}
    ids = {item["id"] for item in body["items"]}
    check_exactly_visible(caller, tenant, ids, visible_buildings(caller, tenant))


def check_organization_stats(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    """The sum over the buildings whose stats the caller may read, and only those."""
    ids = {item["building_id"] for item in body["buildings"]}
    if caller == CONCIERGE:  # no building whose stats a concierge may read
        assert ids == set() and body["offered_hours"] == 0 and body["revenue_clp"] == 0, body
        return
    check_exactly_visible(caller, tenant, ids, visible_buildings(caller, tenant))
    assert body["offered_hours"] == pytest.approx(sum(item["offered_hours"] for item in body["buildings"]))
    per_building = {item["building_id"]: item for item in body["buildings"]}
    for building_id in visible_buildings(caller, tenant):  # the world block of each (in the window)
        assert per_building[building_id]["offered_hours"] >= 11, per_building[building_id]


def check_building(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert body["id"] == tenant.buildings[label] and body["organization_id"] == tenant.organization_id


def check_items_of(rows: str) -> Check:
    """A list of the building: only its rows, and the world's row among them."""

    def check(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
        assert {item["building_id"] for item in body["items"]} == {tenant.buildings[label]}, body
        assert getattr(tenant, rows)[label] in {item["id"] for item in body["items"]}

    return check


def check_availability(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    spots = ctx.admin("GET", f"/v1/buildings/{tenant.buildings[label]}/spots?limit=200")["items"]
    assert {item["spot_id"] for item in body["items"]} <= {spot["id"] for spot in spots}, body
    assert tenant.blocks[label] in {item["id"] for item in body["items"]}


def check_building_stats(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert body["offered_hours"] >= 11 and body.get("buildings") is None, body


def check_created_in_building(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert body["building_id"] == tenant.buildings[label], body


def check_rules_of_building(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert {item["building_id"] for item in body["items"]} <= {tenant.buildings[label]}, body


def check_quote(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert body["base_price_clp"] == 5000 and body["price_clp"] >= 0 and "rule_id" in body, body


def check_blocklist_of_building(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    """Only entries that apply to the building: its organization's and its own, and global ones for platform staff.

    Global entries are the platform's: organization staff never see them, nor their values.
    """
    building_id = aim.ref("building_id")
    platform = caller in (SUPPORT, PLATFORM_ADMIN)
    for item in body["items"]:
        assert (
            (item["scope"] == "global" and platform)
            or (item["scope"] == "organization" and item["organization_id"] == tenant.organization_id)
            or (item["scope"] == "building" and item["building_id"] == building_id)
        ), (caller, item)
    ids = {item["id"] for item in body["items"]}
    assert {aim.ref("organization_entry"), aim.ref("building_entry")} <= ids, (caller, ids)
    assert (aim.ref("global_entry") in ids) == platform, (caller, ids)


def check_is_the_booking(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert body["id"] == aim.ref("booking_id") and body["building_id"] == tenant.buildings[label], body


def check_booking_list(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    """Listed exactly when the caller may see it (the booker, its building's staff, platform staff)."""
    ids = {item["id"] for item in body["items"]}
    sees = BOOKING_VIEW.get(caller) == 200
    assert (aim.ref("booking_id") in ids) == sees, (caller, sees, ids)


# --- the matrix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scoped:
    """An endpoint whose rows belong to an organization (or a platform-only action on such rows)."""

    kind: str  # "building" | "organization" | "booking" | "caller_list" | "platform"
    expect: dict[str, Expected]
    aim: AimFn
    on: str  # the target organization: "world" (A), "own" (P) or "bookings" (Q)
    body: Callable[[Ctx, Tenant, str, Aim], Any] | None = None
    query: str | Callable[[Ctx, Aim], str] = ""
    snapshot: Snapshot | None = None  # writes: read back before and after
    check: Check | None = None  # 2xx: what the answer holds
    missing_body: Callable[[Ctx], Any] | None = None  # the body naming a row that does not exist
    read_only: bool = False  # a POST that only reads (nothing to read back)
    reason: str = ""

    @property
    def writes(self) -> bool:
        return self.snapshot is not None


@dataclass(frozen=True)
class NotTenantScoped:
    reason: str


def world_window(ctx: Ctx, aim: Aim) -> str:
    """From the first to just after the last start of organization A's world blocks (about 2 days ahead)."""
    return ctx.world_window


def shared_window(ctx: Ctx, aim: Aim) -> str:
    """The instant both shared bookings of Q start at (one in Q1, one in Q2): nothing else is in it."""
    end = iso(datetime.strptime(ctx.shared_start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(seconds=1))
    return f"?from={ctx.shared_start}&to={end}&limit=200"


Matrix = dict[tuple[str, str], Scoped | NotTenantScoped]
Case = tuple[tuple[str, str], str]


def cases(matrix: Matrix) -> list[Case]:
    """One case per (endpoint, caller) of the tenant-scoped entries, in table order."""
    return [(key, caller) for key, entry in matrix.items() if isinstance(entry, Scoped) for caller in entry.expect]


def case_id(case: Case) -> str:
    (method, rule), caller = case
    return f"{method} {rule} | {caller}"


def parametrize(matrix: Matrix) -> Any:
    """``@parametrize(MATRIX)`` on a resource's ``test_isolation_matrix(ctx, key, caller)``."""
    found = cases(matrix)
    return pytest.mark.parametrize(("key", "caller"), found, ids=[case_id(case) for case in found])


def fill(rule: str, params: dict[str, str]) -> str:
    return PARAM.sub(lambda m: params[m.group(1)], rule)


REQUIRED_CALLERS = {
    "building": {ANONYMOUS, *OTHER_ORG, OTHER_BUILDING_ADMIN, CONCIERGE, RESIDENT, SUPPORT, ORG_ADMIN, BUILDING_ADMIN},
    "organization": {ANONYMOUS, *OTHER_ORG, CONCIERGE, RESIDENT, SUPPORT, ORG_ADMIN, BUILDING_ADMIN},
    "booking": {ANONYMOUS, *OTHER_ORG, OTHER_BUILDING_ADMIN, OTHER_BUILDING_RESIDENT, NEIGHBOUR, CONCIERGE, RESIDENT},
    "caller_list": {ANONYMOUS, *OTHER_ORG, OTHER_BUILDING_RESIDENT, NEIGHBOUR, CONCIERGE, RESIDENT, SUPPORT},
    "platform": {ANONYMOUS, *OTHER_ORG, CONCIERGE, RESIDENT, SUPPORT, BUILDING_ADMIN},
}


def check_entry(key: tuple[str, str], entry: Scoped | NotTenantScoped) -> None:
    """An entry says why it is not tenant-scoped, or covers the callers that matter for its kind."""
    if isinstance(entry, NotTenantScoped):
        assert entry.reason.strip(), key
        return
    method = key[0]
    missing = (REQUIRED_CALLERS[entry.kind] | {PLATFORM_ADMIN}) - entry.expect.keys()
    assert not missing, (key, missing)
    assert any(succeeds(expected) for expected in entry.expect.values()), f"{key}: no rightful caller"
    assert entry.kind != "platform" or entry.reason.strip(), key
    assert (method == "GET" or entry.read_only) != entry.writes, f"{key}: writes need a read-back, reads none"
    assert entry.check is not None or entry.writes, f"{key}: a read needs a content check"
    assert entry.on in ("world", "own", "bookings") and (entry.on != "world" or not entry.writes), key


def _follow_job(ctx: Ctx, headers: dict[str, str], response: Any) -> dict[str, Any]:
    job = ctx.world.stack.wait_job(headers, response.get_json()["job_id"])
    assert job["status"] in ("succeeded", "failed"), job
    return job


def _refusal_leaks(ctx: Ctx, tenant: Tenant, aim: Aim, sent: str, text: str) -> set[str]:
    return {s for s in ctx.secrets_by_org[tenant.organization_id] | aim.secrets if s not in sent and s in text}


def run_case(ctx: Ctx, matrix: Matrix, key: tuple[str, str], caller: str) -> None:
    """One case: aim, call as ``caller``, and check the outcome, the problem document, the leaks and the read-back."""
    method, rule = key
    entry = matrix[key]
    assert isinstance(entry, Scoped), key
    tenant = ctx.tenant(entry.on)
    label = labels(tenant)[1 if caller == OTHER_BUILDING_ADMIN else 0]
    aim = entry.aim(ctx, tenant, label)
    body = entry.body(ctx, tenant, label, aim) if entry.body else None
    query = entry.query(ctx, aim) if callable(entry.query) else entry.query
    path = fill(rule, aim.params) + query
    headers = ctx.headers(caller, tenant)
    sent = path + (json.dumps(body, ensure_ascii=False) if body is not None else "")
    before = entry.snapshot(ctx, tenant, aim) if entry.snapshot else None

    response = ctx.call(method, path, headers, body)

    expected = options(entry.expect[caller])
    text = response.get_data(as_text=True)
    assert response.status_code in {http_status(o) for o in expected}, (
        method,
        path,
        caller,
        response.status_code,
        text,
    )
    refused = response.status_code >= 400
    job = None
    if response.status_code == 202 and any(isinstance(o, Job) for o in expected):
        job = _follow_job(ctx, headers, response)
        error = job["error"]["type"] if job["status"] == "failed" else None
        wanted = {None if o.error is None else f"/problems/{o.error}" for o in expected if isinstance(o, Job)}
        assert error in wanted, (caller, job)
        refused, text = error is not None, json.dumps(job, ensure_ascii=False)
    after = entry.snapshot(ctx, tenant, aim) if entry.snapshot else None

    if refused:
        document = job["error"] if job is not None else response.get_json()
        if job is None:
            assert response.mimetype == PROBLEM, (response.mimetype, text)
            assert document["status"] == response.status_code
            assert document["type"] == PROBLEM_TYPES[response.status_code], document
        leaked = _refusal_leaks(ctx, tenant, aim, sent, text)
        assert not leaked, (caller, leaked, text)
        assert after == before, f"a refused {method} {rule} changed {before} into {after}"
        if document["status"] == 404 and (aim.params or entry.missing_body):
            # out of scope reads exactly like "does not exist": no existence oracle
            missing = fill(rule, {name: str(uuid.uuid4()) for name in aim.params}) + query
            twin = ctx.call(method, missing, headers, entry.missing_body(ctx) if entry.missing_body else body)
            if job is not None:
                twin_document = _follow_job(ctx, headers, twin)["error"]
            else:
                assert twin.status_code == 404 and twin.mimetype == PROBLEM, twin.get_data(as_text=True)
                twin_document = twin.get_json()
            fields = ("type", "title", "status", "detail", "errors")
            assert {k: document.get(k) for k in fields} == {k: (twin_document or {}).get(k) for k in fields}
    else:
        leaked = {s for s in ctx.hidden(caller, tenant, entry.kind == "caller_list") if s in text}
        assert not leaked, (caller, leaked, text)
        if entry.writes:
            assert after != before, f"{method} {rule} answered {response.status_code} but changed nothing"
        if entry.check is not None:
            entry.check(ctx, caller, tenant, label, aim, response.get_json())
