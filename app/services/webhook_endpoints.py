"""Operator webhook endpoints and the event catch-up log (API.md "Events and operator webhooks").

Who: the organization's org_admin (and platform admins): ``Capability.INTEGRATE``. Everyone else
tied to the organization gets 403, anyone else 404, as for every organization row.

- **Register**: the URL is checked against the callback URL policy now (422) and again before
  every attempt (app/security/outbound.py); the ``whsec_`` secret is made here, stored encrypted
  with the keyring and returned once. ``["*"]`` (alone or among others) subscribes to every type.
- **Rotate**: a new secret, returned once; attempts from the next one on sign with it.
- **Delete**: the endpoint and its deliveries go (cascade); an attempt in flight finds no row to
  record into and nothing is retried.
- **Catch-up**: the organization's events in ``seq`` order (the commit-independent order the outbox
  assigns), after an event id (``after``) or a page cursor, filtered by type. Events are kept
  ``EVENT_RETENTION_DAYS`` (30); an ``after`` that names no event of the organization is a 422,
  never a silent restart from the beginning.

Audit rows name the endpoint and its organization by id only (a URL can hold a token).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.jobs.webhooks import new_secret
from app.models import Event, WebhookEndpoint
from app.models.pagination import decode_cursor, encode_cursor, paginate
from app.problems import Problem
from app.security import rbac
from app.security.rbac import Capability, Principal
from app.services import audit
from app.services.organizations import organization_in_scope
from app.unit_of_work import stored

ALL = "*"


@dataclass(frozen=True)
class EndpointFields:
    url: str  # already checked against the outbound policy by the edge
    event_types: list[str]
    description: str | None


def _normalized_types(types: list[str]) -> list[str]:
    """``*`` subsumes the rest; otherwise the distinct types, in catalogue-independent sorted order."""
    return [ALL] if ALL in types else sorted(set(types))


def create(
    principal: Principal, organization_id: uuid.UUID, fields: EndpointFields, actor: audit.Actor
) -> WebhookEndpoint:
    """Register an endpoint; its ``secret`` attribute is the only time the secret leaves us."""
    organization_in_scope(principal, organization_id, Capability.INTEGRATE)
    endpoint = WebhookEndpoint(
        organization_id=organization_id,
        url=fields.url,
        event_types=_normalized_types(fields.event_types),
        description=fields.description,
        secret=new_secret(),
        created_by=principal.user_id,
    )
    db.session.add(endpoint)
    db.session.flush()
    audit.record(
        "webhook_endpoint.created",
        actor,
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
        details={"organization_id": str(organization_id), "event_types": endpoint.event_types},
    )
    return stored(endpoint)


def list_endpoints(
    principal: Principal, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[WebhookEndpoint], str | None]:
    organization_in_scope(principal, organization_id, Capability.INTEGRATE)
    query = select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)
    return paginate(query, [WebhookEndpoint.created_at, WebhookEndpoint.id], limit=limit, cursor=cursor)


def _endpoint_in_scope(principal: Principal, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    scope = rbac.of_organization(endpoint.organization_id if endpoint else None, missing="No such webhook endpoint.")
    rbac.require(principal, Capability.INTEGRATE, scope)
    return endpoint  # type: ignore[return-value]  # require raised if it is None


def delete(principal: Principal, endpoint_id: uuid.UUID, actor: audit.Actor) -> None:
    endpoint = _endpoint_in_scope(principal, endpoint_id)
    audit.record(
        "webhook_endpoint.deleted",
        actor,
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
        details={"organization_id": str(endpoint.organization_id)},
    )
    db.session.delete(endpoint)


def rotate_secret(principal: Principal, endpoint_id: uuid.UUID, actor: audit.Actor) -> str:
    endpoint = _endpoint_in_scope(principal, endpoint_id)
    endpoint.secret = new_secret()
    audit.record(
        "webhook_endpoint.secret_rotated",
        actor,
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
        details={"organization_id": str(endpoint.organization_id)},
    )
    return endpoint.secret


def list_events(
    principal: Principal,
    organization_id: uuid.UUID,
    *,
    type: str | None,
    after: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Event], str | None]:
    """The organization's events, oldest first, strictly after ``after`` (an event id) and ``cursor``."""
    organization_in_scope(principal, organization_id, Capability.INTEGRATE)
    query = select(Event).where(Event.organization_id == organization_id)
    if type is not None:
        query = query.where(Event.type == type)
    if after is not None:
        seq = db.session.execute(
            select(Event.seq).where(Event.id == after, Event.organization_id == organization_id)
        ).scalar_one_or_none()
        if seq is None:
            raise Problem(
                "validation-error",
                "after names no event of this organization (events are kept 30 days).",
                errors=[{"pointer": "/after", "detail": "unknown event"}],
            )
        query = query.where(Event.seq > seq)
    if cursor:
        (last_seq,) = decode_cursor(cursor, [int])
        if not 0 <= last_seq < 2**63:  # a bigint, or PostgreSQL refuses the comparison
            raise Problem(
                "validation-error",
                "The cursor is not valid.",
                errors=[{"pointer": "/cursor", "detail": "invalid cursor"}],
            )
        query = query.where(Event.seq > last_seq)
    rows = list(db.session.execute(query.order_by(Event.seq).limit(limit + 1)).scalars())
    next_cursor = encode_cursor([rows[limit - 1].seq]) if len(rows) > limit else None
    return rows[:limit], next_cursor
