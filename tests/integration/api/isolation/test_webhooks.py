"""The isolation matrix for operator webhooks and the event log (harness: tests/support/isolation.py).

Endpoints made here point at a closed local port and subscribe to ``user.anonymized`` only (an
event nothing in the suite emits), so no case leaves deliveries retrying in the shared worker.
"""

from __future__ import annotations

from typing import Any

from tests.support.isolation import (
    Aim,
    Ctx,
    Matrix,
    Scoped,
    at_organization,
    organization_manage,
    parametrize,
    run_case,
    snap,
    snap_org,
)
from tests.support.world import Tenant

QUIET = ["user.anonymized"]


def endpoint_body(ctx: Ctx, tenant: Tenant, label: str, aim: Aim) -> dict[str, Any]:
    return {"url": f"http://127.0.0.1:9/{ctx.unique('matrix-')}", "event_types": QUIET}


def at_fresh_endpoint(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    made = ctx.admin(
        "POST",
        f"/v1/organizations/{tenant.organization_id}/webhook-endpoints",
        endpoint_body(ctx, tenant, label, None),
        201,
    )
    return Aim(
        {"endpoint_id": made["id"]},
        refs={"organization_id": tenant.organization_id},
        secrets=frozenset({made["secret"], made["url"]}),
    )


def at_organization_with_endpoint(ctx: Ctx, tenant: Tenant, label: str) -> Aim:
    aim = at_fresh_endpoint(ctx, tenant, label)
    return Aim({"organization_id": tenant.organization_id}, refs=aim.params, secrets=aim.secrets)


def check_endpoints(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert {item["organization_id"] for item in body["items"]} == {tenant.organization_id}, body
    assert aim.ref("endpoint_id") in {item["id"] for item in body["items"]}
    assert all("secret" not in item for item in body["items"]), body


def check_events(ctx: Ctx, caller: str, tenant: Tenant, label: str, aim: Aim, body: Any) -> None:
    assert body["items"], "organization A has events (its world was built through the API)"
    assert {item["organization_id"] for item in body["items"]} == {tenant.organization_id}, body
    seqs = ctx.sql(
        "SELECT id::text FROM events WHERE organization_id = %s ORDER BY seq LIMIT 50", tenant.organization_id
    )
    assert [item["id"] for item in body["items"]] == [row[0] for row in seqs]


MATRIX: Matrix = {
    ("POST", "/v1/organizations/<organization_id>/webhook-endpoints"): Scoped(
        "organization",
        organization_manage(201),
        at_organization,
        "own",
        body=endpoint_body,
        snapshot=snap_org("SELECT count(*) FROM webhook_endpoints WHERE organization_id = %s"),
    ),
    ("GET", "/v1/organizations/<organization_id>/webhook-endpoints"): Scoped(
        "organization",
        organization_manage(200),
        at_organization_with_endpoint,
        "own",
        query="?limit=200",
        check=check_endpoints,
    ),
    ("DELETE", "/v1/webhook-endpoints/<endpoint_id>"): Scoped(
        "organization",
        organization_manage(204),
        at_fresh_endpoint,
        "own",
        snapshot=snap("SELECT count(*) FROM webhook_endpoints WHERE id = %s", "endpoint_id"),
    ),
    ("POST", "/v1/webhook-endpoints/<endpoint_id>/rotate-secret"): Scoped(
        "organization",
        organization_manage(200),
        at_fresh_endpoint,
        "own",
        snapshot=snap("SELECT secret_encrypted FROM webhook_endpoints WHERE id = %s", "endpoint_id"),
    ),
    ("GET", "/v1/organizations/<organization_id>/events"): Scoped(
        "organization", organization_manage(200), at_organization, "world", check=check_events
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
