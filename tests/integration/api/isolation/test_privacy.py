"""The isolation matrix for privacy and staff administration: anonymizations, the audit trail, members
and memberships (harness: tests/support/isolation.py)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.isolation import (
    ANONYMOUS,
    BUILDING_ADMIN,
    CONCIERGE,
    NEIGHBOUR,
    ORG_ADMIN,
    OTHER_BUILDING_ADMIN,
    OTHER_BUILDING_RESIDENT,
    OTHER_ORG_ADMIN,
    OTHER_ORG_BUILDING_ADMIN,
    OTHER_ORG_CONCIERGE,
    OTHER_ORG_RESIDENT,
    PLATFORM_ADMIN,
    RESIDENT,
    SUPPORT,
    Aim,
    Ctx,
    Expected,
    Job,
    Matrix,
    Scoped,
    at_fresh_user,
    at_organization,
    organization_manage,
    parametrize,
    run_case,
    snap,
)
from tests.support.world import Tenant

#: Anonymizing others: the org_admin of the person's organization and platform_admin; every other
#: role is refused before any lookup (403); another organization's org_admin gets the 404 of an
#: unknown id.
ANONYMIZE: dict[str, Expected] = {
    ANONYMOUS: 401,
    OTHER_ORG_ADMIN: 404,
    OTHER_ORG_BUILDING_ADMIN: 403,
    OTHER_ORG_CONCIERGE: 403,
    OTHER_ORG_RESIDENT: 403,
    OTHER_BUILDING_ADMIN: 403,
    CONCIERGE: 403,
    RESIDENT: 403,
    SUPPORT: 403,
    BUILDING_ADMIN: 403,
    ORG_ADMIN: Job(),
    PLATFORM_ADMIN: Job(),
}

#: The audit trail: platform_admin and org_admin (their own organization's rows), nobody else.
AUDIT: dict[str, Expected] = {
    **dict.fromkeys(
        (
            OTHER_ORG_BUILDING_ADMIN,
            OTHER_ORG_CONCIERGE,
            OTHER_ORG_RESIDENT,
            OTHER_BUILDING_RESIDENT,
            NEIGHBOUR,
            CONCIERGE,
            RESIDENT,
            SUPPORT,
            BUILDING_ADMIN,
        ),
        403,
    ),
    ANONYMOUS: 401,
    OTHER_ORG_ADMIN: 200,
    ORG_ADMIN: 200,
    PLATFORM_ADMIN: 200,
}


def audit_of_organization(ctx: Ctx, aim: Aim) -> str:
    return f"?entity_type=organization&entity_id={aim.ref('organization_id')}&limit=200"


def check_audit_of_organization(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    if caller == OTHER_ORG_ADMIN:  # its own organization's rows only: none about this one
        assert body["items"] == [], body
        return
    assert body["items"] and {item["entity_id"] for item in body["items"]} == {tenant.organization_id}
    assert "organization.created" in {item["action"] for item in body["items"]}
    assert caller == PLATFORM_ADMIN or all(item["ip"] is None for item in body["items"])


def check_members(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    ids = {item["user_id"] for item in body["items"]}
    assert {tenant.people[role]["id"] for role in ("org_admin", "building_admin", "concierge")} <= ids
    assert {item["role"] for item in body["items"]} <= {"org_admin", "building_admin", "concierge"}


def at_fresh_membership(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    """A new concierge of the target building: the membership a removal aims at."""
    email = f"{ctx.unique('gone-')}@staff.test"
    body = {"email": email, "password": "staff-password-123", "role": "concierge"}
    body["building_ids"] = [tenant.buildings[label]]
    created = ctx.admin("POST", f"/v1/organizations/{tenant.organization_id}/members", body, 201)
    return Aim({"membership_id": created["membership_id"]}, secrets=frozenset({email, created["user_id"]}))


MATRIX: Matrix = {
    ("POST", "/v1/admin/anonymizations"): Scoped(
        "building",
        ANONYMIZE,
        at_fresh_user(banned=False),
        "own",
        body=lambda ctx, tenant, label, aim: {"user_ids": [aim.ref("user_id")]},
        missing_body=lambda ctx: {"user_ids": [str(uuid.uuid4())]},
        snapshot=snap("SELECT anonymized_at IS NOT NULL, password_hash IS NULL FROM users WHERE id = %s", "user_id"),
    ),
    ("GET", "/v1/audit-logs"): Scoped(
        "caller_list",
        AUDIT,
        at_organization,
        "bookings",
        query=audit_of_organization,
        check=check_audit_of_organization,
    ),
    ("GET", "/v1/organizations/<organization_id>/members"): Scoped(
        "organization", organization_manage(200), at_organization, "world", check=check_members
    ),
    ("DELETE", "/v1/memberships/<membership_id>"): Scoped(
        "organization",
        organization_manage(204),
        at_fresh_membership,
        "own",
        snapshot=snap("SELECT count(*) FROM memberships WHERE id = %s", "membership_id"),
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
