"""The isolation matrix for platform actions on tenants' rows: creating a tenant (platform_admin only),
banning a user (platform_admin, or the org_admin of the resident's organization).

The harness (callers, profiles, aims, checks, the run of a case) is tests/support/isolation.py.
"""

from __future__ import annotations

from tests.support.isolation import (
    ORG_ADMIN,
    OTHER_ORG_ADMIN,
    Ctx,
    Matrix,
    Scoped,
    at_fresh_user,
    nothing,
    parametrize,
    platform_only,
    run_case,
    snap,
)

MATRIX: Matrix = {
    ("POST", "/v1/organizations"): Scoped(
        "platform",
        {**platform_only(201), ORG_ADMIN: 403},
        nothing,
        "own",
        body=lambda ctx, tenant, label, aim: {"name": ctx.unique("Matrix org ")},
        snapshot=snap("SELECT count(*) FROM organizations"),
        reason="creates a tenant: platform_admin only",
    ),
    ("POST", "/v1/admin/users/<user_id>/ban"): Scoped(
        "platform",
        # API.md: platform_admin, and the org_admin of the resident's own organization
        {**platform_only(200), ORG_ADMIN: 200, OTHER_ORG_ADMIN: 404},
        at_fresh_user(banned=False),
        "own",
        body=lambda ctx, tenant, label, aim: {"reason": "matrix"},
        snapshot=snap("SELECT banned_at FROM users WHERE id = %s", "user_id"),
        reason="platform_admin, or the org_admin of the resident's organization (rbac.of_user, MANAGE_STAFF)",
    ),
    ("POST", "/v1/admin/users/<user_id>/unban"): Scoped(
        "platform",
        {**platform_only(200), ORG_ADMIN: 200, OTHER_ORG_ADMIN: 404},
        at_fresh_user(banned=True),
        "own",
        snapshot=snap("SELECT banned_at FROM users WHERE id = %s", "user_id"),
        reason="platform_admin, or the org_admin of the resident's organization (rbac.of_user, MANAGE_STAFF)",
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
