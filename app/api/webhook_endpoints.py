"""Operator webhooks and the event log: ``/v1/organizations/{id}/webhook-endpoints``,
``/v1/webhook-endpoints/{id}`` and ``/v1/organizations/{id}/events`` (API.md "Events and operator webhooks")."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from flask import Response
from flask_openapi3 import Tag
from pydantic import AnyHttpUrl, BaseModel, Field

from app.api.callbacks import validated_callback_url
from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.idempotency import idempotent
from app.api.openapi import APIBlueprint, problems
from app.api.pages import PageQuery
from app.api.schemas import StrictModel
from app.domain.events import EventType
from app.domain.timefmt import rfc3339
from app.models import Event, WebhookEndpoint
from app.representation import Document
from app.security.outbound import MAX_URL_LENGTH
from app.services import webhook_endpoints

bp = APIBlueprint(
    "webhook_endpoints", __name__, url_prefix="/v1", abp_tags=[Tag(name="webhooks")], abp_security=BEARER_SECURITY
)

#: An event type of the catalogue, or ``*`` for all of them.
EventTypeFilter = Literal[(*sorted(t.value for t in EventType), "*")]  # type: ignore[valid-type]
EventTypeName = Literal[tuple(sorted(t.value for t in EventType))]  # type: ignore[valid-type]


class OrganizationPath(BaseModel):
    organization_id: uuid.UUID


class EndpointPath(BaseModel):
    endpoint_id: uuid.UUID


class EndpointRequest(StrictModel):
    url: AnyHttpUrl = Field(
        max_length=MAX_URL_LENGTH, description="http/https (https only in production); public addresses only."
    )
    event_types: list[EventTypeFilter] = Field(min_length=1, max_length=32, examples=[["booking.confirmed"], ["*"]])
    description: str | None = Field(default=None, max_length=500)


class EndpointDocument(Document):
    id: str
    organization_id: str
    url: str
    event_types: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    created_at: str

    @classmethod
    def fields_of(cls, endpoint: WebhookEndpoint) -> dict[str, Any]:
        return {
            "id": str(endpoint.id),
            "organization_id": str(endpoint.organization_id),
            "url": endpoint.url,
            "event_types": list(endpoint.event_types),
            "description": endpoint.description,
            "status": endpoint.status,
            "created_at": rfc3339(endpoint.created_at) or "",
        }

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointDocument:
        return cls(**cls.fields_of(endpoint))


class CreatedEndpoint(EndpointDocument):
    secret: str = Field(description="The whsec_ signing secret: shown only here and on rotation.")


class EndpointPage(Document):
    items: list[EndpointDocument]
    next_cursor: str | None


class SecretDocument(Document):
    secret: str


class EventDocument(Document):
    """The event document, exactly what a webhook POSTs: ids and facts, never personal data."""

    id: str
    type: str
    occurred_at: str
    organization_id: str | None
    building_id: str | None
    data: dict[str, str | int | float | bool | None]

    @classmethod
    def of(cls, event: Event) -> EventDocument:
        return cls(**event.document())


class EventPage(Document):
    items: list[EventDocument]
    next_cursor: str | None


class EventQuery(PageQuery):
    type: EventTypeName | None = Field(default=None, description="Only events of this type.")
    after: uuid.UUID | None = Field(default=None, description="An event id: only events after it (catching up).")


@bp.post("/organizations/<organization_id>/webhook-endpoints", responses={201: CreatedEndpoint})
@login_required
@idempotent
def create_webhook_endpoint(path: OrganizationPath, body: EndpointRequest) -> tuple[dict[str, object], int]:
    """Register an endpoint for the organization's events (org_admin); the secret is shown only here."""
    fields = webhook_endpoints.EndpointFields(
        url=validated_callback_url(body.url, field="url") or "",
        event_types=list(body.event_types),
        description=body.description,
    )
    endpoint = webhook_endpoints.create(current_principal(), path.organization_id, fields, request_actor())
    document = CreatedEndpoint(**EndpointDocument.fields_of(endpoint), secret=endpoint.secret)
    return document.model_dump(mode="json"), 201


@bp.get("/organizations/<organization_id>/webhook-endpoints", responses={200: EndpointPage})
@login_required
def list_webhook_endpoints(path: OrganizationPath, query: PageQuery) -> dict[str, object]:
    """The organization's endpoints, oldest first, without their secrets (org_admin)."""
    rows, next_cursor = webhook_endpoints.list_endpoints(
        current_principal(), path.organization_id, limit=query.limit, cursor=query.cursor
    )
    return EndpointPage(items=[EndpointDocument.of(e) for e in rows], next_cursor=next_cursor).model_dump(mode="json")


@bp.delete("/webhook-endpoints/<endpoint_id>", responses={204: None})
@login_required
def delete_webhook_endpoint(path: EndpointPath) -> Response:
    """Remove an endpoint; nothing more is sent to it, retries included."""
    webhook_endpoints.delete(current_principal(), path.endpoint_id, request_actor())
    return Response(status=204)


@bp.post("/webhook-endpoints/<endpoint_id>/rotate-secret", responses={200: SecretDocument})
@login_required
def rotate_webhook_endpoint_secret(path: EndpointPath) -> dict[str, object]:
    """Replace the endpoint's signing secret; attempts from now on are signed with the new one."""
    secret = webhook_endpoints.rotate_secret(current_principal(), path.endpoint_id, request_actor())
    return SecretDocument(secret=secret).model_dump(mode="json")


@bp.get("/organizations/<organization_id>/events", responses={200: EventPage, **problems(422)})
@login_required
def list_organization_events(path: OrganizationPath, query: EventQuery) -> dict[str, object]:
    """The organization's events, oldest first (kept 30 days): ``after`` an event id to catch up after downtime."""
    rows, next_cursor = webhook_endpoints.list_events(
        current_principal(),
        path.organization_id,
        type=query.type,
        after=query.after,
        limit=query.limit,
        cursor=query.cursor,
    )
    return EventPage(items=[EventDocument.of(e) for e in rows], next_cursor=next_cursor).model_dump(mode="json")
