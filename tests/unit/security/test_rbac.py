"""The permission decision, as a table: role x capability x scope -> allowed / NotFound / Forbidden.

Pure: principals and rows are plain objects, scopes come from the resolvers. The expected outcomes
are written out by hand from DOMAIN.md and the README's Tenancy section (never derived from
``rbac.POLICY``), so a change to the policy table that changes who may do what fails here.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.sql import elements, operators, selectable

from app.models import BlocklistEntry, Booking, Building
from app.security import rbac
from app.security.rbac import Capability as C
from app.security.rbac import MembershipScope, Principal

ORG, OTHER = uuid.uuid4(), uuid.uuid4()
B1, B2, X1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()  # B1, B2 of ORG; X1 of OTHER
R, R_NEIGHBOUR, R_B2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
RESIDENT_USER = uuid.uuid4()


def member(org: uuid.UUID, role: str, *buildings: uuid.UUID) -> MembershipScope:
    return MembershipScope(uuid.uuid4(), org, role, frozenset(buildings))


PRINCIPALS = {
    "platform_admin": Principal(uuid.uuid4(), "s", platform_role="platform_admin"),
    "support": Principal(uuid.uuid4(), "s", platform_role="support"),
    "org_admin": Principal(uuid.uuid4(), "s", memberships=(member(ORG, "org_admin"),)),
    "building_admin": Principal(uuid.uuid4(), "s", memberships=(member(ORG, "building_admin", B1),)),
    "concierge": Principal(uuid.uuid4(), "s", memberships=(member(ORG, "concierge", B1),)),
    "resident": Principal(RESIDENT_USER, "s", resident_id=R, resident_building_id=B1),
    "neighbour": Principal(uuid.uuid4(), "s", resident_id=R_NEIGHBOUR, resident_building_id=B1),
    "other_org_admin": Principal(uuid.uuid4(), "s", memberships=(member(OTHER, "org_admin"),)),
    "nobody": Principal(uuid.uuid4(), "s"),
}


def building(building_id: uuid.UUID, org: uuid.UUID) -> SimpleNamespace:
    return SimpleNamespace(id=building_id, organization_id=org)


def entry(scope: str, organization_id: uuid.UUID | None = None, building_id: uuid.UUID | None = None) -> Any:
    return SimpleNamespace(scope=scope, organization_id=organization_id, building_id=building_id, is_active=True)


SCOPES = {
    "organization": rbac.of_organization(ORG),
    "other_organization": rbac.of_organization(OTHER),
    "building": rbac.of_building(building(B1, ORG)),
    "other_building": rbac.of_building(building(B2, ORG)),
    "other_org_building": rbac.of_building(building(X1, OTHER)),
    "own_booking": rbac.of_booking(SimpleNamespace(resident_id=R), building(B1, ORG)),
    "booking_other_building": rbac.of_booking(SimpleNamespace(resident_id=R_B2), building(B2, ORG)),
    "global_entry": rbac.of_blocklist_entry(entry("global")),
    "organization_entry": rbac.of_blocklist_entry(entry("organization", organization_id=ORG)),
    "building_entry": rbac.of_blocklist_entry(entry("building", building_id=B1), building(B1, ORG)),
    "resident_job": rbac.of_job(SimpleNamespace(owner_user_id=RESIDENT_USER)),
    "organization_staff": rbac.of_organization(ORG),
    "resident_user": rbac.of_user(True, building(B1, ORG)),
    "platform_user": rbac.of_user(True),
}

#: The capabilities the endpoints of each kind of row ask.
PLACE = (C.VIEW, C.MANAGE, C.STAFF_READ, C.GATE, C.READ_BLOCKLIST)
BOOKING = (C.READ_BOOKING, C.CANCEL_BOOKING, C.CANCEL_STARTED, C.GATE)
ENTRY = (C.VIEW, C.MANAGE)
JOB = (C.READ_JOB,)
ORGANIZATION = (*PLACE, C.INTEGRATE)  # an organization's webhook endpoints and event log
STAFF_WORK = (C.READ_AUDIT, C.MANAGE_STAFF)
PERSON = (C.ANONYMIZE, C.MANAGE_STAFF)
ASKED = {
    "organization": ORGANIZATION,
    "other_organization": ORGANIZATION,
    "building": PLACE,
    "other_building": PLACE,
    "other_org_building": PLACE,
    "own_booking": BOOKING,
    "booking_other_building": BOOKING,
    "global_entry": ENTRY,
    "organization_entry": ENTRY,
    "building_entry": ENTRY,
    "resident_job": JOB,
    "organization_staff": STAFF_WORK,
    "resident_user": PERSON,
    "platform_user": PERSON,
}

ALL_PLACE = set(PLACE)
ALL_BOOKING = set(BOOKING)
SUPPORT_PLACE = {C.VIEW, C.STAFF_READ, C.READ_BLOCKLIST}
CONCIERGE_BOOKING = {C.READ_BOOKING, C.CANCEL_BOOKING, C.CANCEL_STARTED, C.GATE}
HIDDEN = None  # out of scope: 404 whatever the capability

#: (principal, scope) -> the capabilities allowed there (the others are 403), or HIDDEN (404).
#: A pair left out is HIDDEN.
EXPECTED: dict[tuple[str, str], set[C] | None] = {
    # platform staff: everywhere; support reads, never changes, and never sees others' jobs
    **{("platform_admin", s): set(ASKED[s]) for s in SCOPES},
    **{("support", s): SUPPORT_PLACE for s in SCOPES if ASKED[s] in (PLACE, ORGANIZATION)},
    # support reads the trail's organization and its residents but changes nothing
    ("support", "organization_staff"): set(),
    ("support", "resident_user"): set(),
    ("support", "platform_user"): set(),
    ("support", "own_booking"): {C.READ_BOOKING},
    ("support", "booking_other_building"): {C.READ_BOOKING},
    ("support", "global_entry"): {C.VIEW},
    ("support", "organization_entry"): {C.VIEW},
    ("support", "building_entry"): {C.VIEW},
    # org_admin: the organization and all its buildings, never the platform's global entries
    ("org_admin", "organization"): ALL_PLACE | {C.INTEGRATE},
    ("org_admin", "building"): ALL_PLACE,
    ("org_admin", "other_building"): ALL_PLACE,
    ("org_admin", "own_booking"): ALL_BOOKING,
    ("org_admin", "booking_other_building"): ALL_BOOKING,
    ("org_admin", "organization_entry"): {C.VIEW, C.MANAGE},
    ("org_admin", "building_entry"): {C.VIEW, C.MANAGE},
    # org_admin: its audit trail and staff, and its residents (anonymize, ban); not platform users
    ("org_admin", "organization_staff"): set(STAFF_WORK),
    ("org_admin", "resident_user"): set(PERSON),
    # building_admin: their listed building; the organization (and its organization-wide entries,
    # which apply to their building) they see but may not change
    ("building_admin", "organization"): {C.VIEW, C.READ_BLOCKLIST},
    ("building_admin", "building"): ALL_PLACE,
    ("building_admin", "own_booking"): ALL_BOOKING,
    ("building_admin", "organization_entry"): {C.VIEW},
    ("building_admin", "building_entry"): {C.VIEW, C.MANAGE},
    # ... and sees its organization and residents, but neither the trail nor staff nor erasure
    ("building_admin", "organization_staff"): set(),
    ("building_admin", "resident_user"): set(),
    # concierge: the gate of their building; no blocklist values, no management
    ("concierge", "organization"): {C.VIEW},
    ("concierge", "building"): {C.VIEW, C.GATE},
    ("concierge", "own_booking"): CONCIERGE_BOOKING,
    ("concierge", "organization_entry"): {C.VIEW},
    ("concierge", "building_entry"): {C.VIEW},
    ("concierge", "organization_staff"): set(),
    # resident: their building; their own bookings (not the gate); their own jobs
    ("resident", "building"): {C.VIEW},
    ("resident", "own_booking"): {C.READ_BOOKING, C.CANCEL_BOOKING},
    ("resident", "building_entry"): {C.VIEW},
    ("resident", "resident_job"): {C.READ_JOB},
    # a neighbour sees the building, never another resident's booking or job
    ("neighbour", "building"): {C.VIEW},
    ("neighbour", "building_entry"): {C.VIEW},
    # another organization's admin: only their own organization
    ("other_org_admin", "other_organization"): ALL_PLACE | {C.INTEGRATE},
    ("other_org_admin", "other_org_building"): ALL_PLACE,
}

CASES = [(who, where, capability) for who in PRINCIPALS for where in SCOPES for capability in ASKED[where]]


def outcome(who: str, where: str, capability: C) -> str:
    allowed = EXPECTED.get((who, where), HIDDEN)
    if allowed is HIDDEN:
        return "not-found"
    return "allowed" if capability in allowed else "forbidden"


@pytest.mark.parametrize(("who", "where", "capability"), CASES)
def test_the_decision_table(who, where, capability):
    principal, scope = PRINCIPALS[who], SCOPES[where]
    expected = outcome(who, where, capability)
    if expected == "allowed":
        rbac.require(principal, capability, scope)
    else:
        error = rbac.NotFound if expected == "not-found" else rbac.Forbidden
        with pytest.raises(error) as raised:
            rbac.require(principal, capability, scope)
        assert raised.value.status == (404 if expected == "not-found" else 403)
    assert rbac.can(principal, capability, scope) is (expected == "allowed")


def test_the_table_names_only_real_principals_and_scopes():
    assert {who for who, _ in EXPECTED} <= set(PRINCIPALS)
    assert {where for _, where in EXPECTED} <= set(SCOPES)
    outcomes = {outcome(*case) for case in CASES}
    assert outcomes == {"allowed", "forbidden", "not-found"}


#: Without a row, only the role is asked: allowed or 403, never 404.
ROLE_ONLY = (C.BOOK, C.READ_BLOCKLIST, C.PLATFORM, C.SET_COMMISSION, C.MANAGE, C.INTEGRATE, C.ANONYMIZE, C.READ_AUDIT)
ERASE = {C.ANONYMIZE, C.READ_AUDIT}
ROLE_EXPECTED: dict[str, set[C]] = {
    "platform_admin": {C.READ_BLOCKLIST, C.PLATFORM, C.SET_COMMISSION, C.MANAGE, C.INTEGRATE} | ERASE,  # never books
    "support": {C.READ_BLOCKLIST},
    "org_admin": {C.READ_BLOCKLIST, C.MANAGE, C.INTEGRATE} | ERASE,
    "building_admin": {C.READ_BLOCKLIST, C.MANAGE},
    "concierge": set(),
    "resident": {C.BOOK},
    "neighbour": {C.BOOK},
    "other_org_admin": {C.READ_BLOCKLIST, C.MANAGE, C.INTEGRATE} | ERASE,
    "nobody": set(),
}


@pytest.mark.parametrize(("who", "capability"), [(w, c) for w in PRINCIPALS for c in ROLE_ONLY])
def test_a_decision_without_a_row_asks_the_role_alone(who, capability):
    principal = PRINCIPALS[who]
    if capability in ROLE_EXPECTED[who]:
        rbac.require(principal, capability)
        assert rbac.can(principal, capability)
    else:
        with pytest.raises(rbac.Forbidden):
            rbac.require(principal, capability)
        assert not rbac.can(principal, capability)


@pytest.mark.parametrize("capability", list(C))
def test_an_absent_row_or_an_absent_principal_is_not_found_for_everyone(capability):
    for absent in (
        rbac.of_building(None),
        rbac.of_organization(None),
        rbac.of_booking(None, None),
        rbac.of_blocklist_entry(None),
        rbac.of_blocklist_entry(SimpleNamespace(**{**vars(entry("global")), "is_active": False})),
        rbac.of_job(None),
        rbac.of_user(False),
    ):
        for principal in PRINCIPALS.values():
            with pytest.raises(rbac.NotFound):
                rbac.require(principal, capability, absent)
    with pytest.raises(rbac.NotFound):
        rbac.require(None, capability, SCOPES["building"])
    with pytest.raises(rbac.Forbidden):
        rbac.require(None, capability)


def test_a_hidden_row_reads_exactly_like_a_missing_one():
    """No existence oracle: the 404 of a row out of scope is the 404 of an id that does not exist."""
    stranger = PRINCIPALS["other_org_admin"]
    for resolve, row in (
        (lambda r: rbac.of_building(r, missing="No such spot."), building(B1, ORG)),
        (lambda r: rbac.of_booking(r, building(B1, ORG) if r else None), SimpleNamespace(resident_id=R)),
        (rbac.of_job, SimpleNamespace(owner_user_id=RESIDENT_USER)),
    ):
        with pytest.raises(rbac.NotFound) as hidden:
            rbac.require(stranger, C.VIEW, resolve(row))
        with pytest.raises(rbac.NotFound) as missing:
            rbac.require(stranger, C.VIEW, resolve(None))
        assert hidden.value.to_dict() == missing.value.to_dict()


def test_forbidden_says_what_the_role_lacks():
    with pytest.raises(rbac.Forbidden) as raised:
        rbac.require(PRINCIPALS["resident"], C.GATE, SCOPES["own_booking"])
    assert "concierge" in raised.value.detail
    with pytest.raises(rbac.Forbidden) as raised:
        rbac.require(PRINCIPALS["org_admin"], C.SET_COMMISSION)
    assert "platform" in raised.value.detail
    with pytest.raises(rbac.Forbidden) as raised:
        rbac.require(PRINCIPALS["concierge"], C.MANAGE, SCOPES["building"], detail="Not yours to change.")
    assert raised.value.detail == "Not yours to change."


# --- scope_filter: the same decision as SQL ------------------------------------------------------
#
# The condition is evaluated here, without a database, over rows held as dicts (a small evaluator
# of the few constructs scope_filter emits: true/false, and/or, =, IN a list or a subquery, IS NULL),
# and must select exactly the rows on which ``rbac.can`` allows the capability.

BUILDINGS = [building(B1, ORG), building(B2, ORG), building(X1, OTHER)]
BOOKINGS = [
    SimpleNamespace(id=uuid.uuid4(), building_id=B1, resident_id=R),
    SimpleNamespace(id=uuid.uuid4(), building_id=B1, resident_id=R_NEIGHBOUR),
    SimpleNamespace(id=uuid.uuid4(), building_id=B2, resident_id=R_B2),
    SimpleNamespace(id=uuid.uuid4(), building_id=X1, resident_id=uuid.uuid4()),
]
ENTRIES = [
    entry("global"),
    entry("organization", organization_id=ORG),
    entry("organization", organization_id=OTHER),
    *(entry("building", building_id=b.id) for b in BUILDINGS),
    # the table's constraint allows a building entry to name its organization too: still the building's
    entry("building", organization_id=ORG, building_id=B2),
]
TABLES = {"buildings": BUILDINGS, "bookings": BOOKINGS, "blocklist_entries": ENTRIES}
BUILDING_OF = {b.id: b for b in BUILDINGS}


def evaluate(clause: Any, row: Any) -> Any:
    if isinstance(clause, elements.True_):
        return True
    if isinstance(clause, elements.False_):
        return False
    if isinstance(clause, elements.Grouping):
        return evaluate(clause.element, row)
    if isinstance(clause, elements.BooleanClauseList):
        values = [evaluate(c, row) for c in clause.clauses]
        return all(values) if clause.operator is operators.and_ else any(values)
    if isinstance(clause, elements.BinaryExpression):
        left = getattr(row, clause.left.key)
        if clause.operator is operators.is_:
            assert isinstance(clause.right, elements.Null)
            return left is None
        if isinstance(clause.right, selectable.ScalarSelect):
            subquery = clause.right.element
            (column,) = subquery.selected_columns
            rows = TABLES[column.table.name]
            right = {getattr(r, column.key) for r in rows if evaluate(subquery.whereclause, r)}
        else:
            right = clause.right.value
        if clause.operator is operators.in_op:
            return left in right
        if clause.operator is operators.eq:
            return left == right
    raise AssertionError(f"unexpected construct {clause!r}")


FILTERED = [
    ("buildings", C.VIEW, rbac.of_building),
    ("buildings", C.MANAGE, rbac.of_building),
    ("buildings", C.STAFF_READ, rbac.of_building),
    ("buildings", C.GATE, rbac.of_building),
    ("bookings", C.READ_BOOKING, lambda b: rbac.of_booking(b, BUILDING_OF[b.building_id])),
    ("blocklist_entries", C.READ_BLOCKLIST, lambda e: rbac.of_blocklist_entry(e, BUILDING_OF.get(e.building_id))),
]
MODELS = {"buildings": Building, "bookings": Booking, "blocklist_entries": BlocklistEntry}


@pytest.mark.parametrize(("who", "table", "capability", "resolve"), [(w, *f) for w in PRINCIPALS for f in FILTERED])
def test_scope_filter_selects_exactly_the_rows_require_allows(who, table, capability, resolve):
    principal = PRINCIPALS[who]
    condition = rbac.scope_filter(principal, MODELS[table], capability)
    rows = TABLES[table]
    selected = [r for r in rows if evaluate(condition, r)]
    allowed = [r for r in rows if rbac.can(principal, capability, resolve(r))]
    assert selected == allowed
