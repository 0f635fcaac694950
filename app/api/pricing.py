"""Yield management: pricing rules, quotes and recalculation jobs."""

from __future__ import annotations

import uuid
from decimal import Decimal

from flask import Response
from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from app.api.callbacks import validated_callback_url
from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.idempotency import idempotent
from app.api.openapi import APIBlueprint, problems
from app.api.pages import PageQuery
from app.api.schemas import CallbackField, JobAccepted, JsonInt, StrictModel, Title, UtcDatetime
from app.domain.timefmt import rfc3339
from app.models import PricingRule
from app.representation import Document
from app.services import pricing_rules, recalculation

bp = APIBlueprint("pricing", __name__, url_prefix="/v1", abp_tags=[Tag(name="pricing")], abp_security=BEARER_SECURITY)


class BuildingPath(BaseModel):
    building_id: uuid.UUID


class RulePath(BaseModel):
    rule_id: uuid.UUID


class BlockPath(BaseModel):
    block_id: uuid.UUID


class RuleRequest(StrictModel):
    name: Title
    priority: JsonInt = Field(ge=-1_000_000, le=1_000_000, description="Higher wins; ties go to the newest rule.")
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    multiplier: Decimal = Field(gt=0, le=10, max_digits=6, decimal_places=4, examples=["2.0"])


class RuleDocument(Document):
    id: str
    building_id: str
    name: str
    priority: int
    starts_at: str
    ends_at: str
    multiplier: str
    created_at: str

    @classmethod
    def of(cls, rule: PricingRule) -> RuleDocument:
        return cls(
            id=str(rule.id),
            building_id=str(rule.building_id),
            name=rule.name,
            priority=rule.priority,
            starts_at=rfc3339(rule.starts_at) or "",
            ends_at=rfc3339(rule.ends_at) or "",
            multiplier=format(rule.multiplier.normalize(), "f"),
            created_at=rfc3339(rule.created_at) or "",
        )


class RuleCreated(RuleDocument):
    recalculation_job_id: str


class RulePage(Document):
    items: list[RuleDocument]
    next_cursor: str | None


class QuoteDocument(Document):
    base_price_clp: int
    multiplier: str
    price_clp: int
    commission_clp: int
    rule_id: str | None


class RecalculationRequest(CallbackField):
    building_id: uuid.UUID | None = Field(default=None, description="Default: every building you manage.")


@bp.post("/buildings/<building_id>/pricing-rules", responses={201: RuleCreated, **problems(409)})
@login_required
def create_pricing_rule(path: BuildingPath, body: RuleRequest) -> tuple[dict[str, object], int]:
    """A multiplier for blocks starting in [starts_at, ends_at) (org_admin, building_admin).

    Starts a recalculation of the building's stored prices (``recalculation_job_id``).
    """
    rule, job_id = pricing_rules.create_rule(
        current_principal(), path.building_id, pricing_rules.RuleFields(**body.model_dump()), request_actor()
    )
    created = RuleCreated(**RuleDocument.of(rule).model_dump(), recalculation_job_id=str(job_id))
    return created.model_dump(mode="json"), 201


@bp.get("/buildings/<building_id>/pricing-rules", responses={200: RulePage})
@login_required
def list_pricing_rules(path: BuildingPath, query: PageQuery) -> dict[str, object]:
    rows, next_cursor = pricing_rules.list_rules(
        current_principal(), path.building_id, limit=query.limit, cursor=query.cursor, actor=request_actor()
    )
    return RulePage(items=[RuleDocument.of(r) for r in rows], next_cursor=next_cursor).model_dump(mode="json")


@bp.delete("/pricing-rules/<rule_id>", responses={204: None})
@login_required
def delete_pricing_rule(path: RulePath) -> Response:
    """Retire a rule: it prices nothing from now on (bookings it priced keep their price)."""
    pricing_rules.delete_rule(current_principal(), path.rule_id, request_actor())
    return Response(status=204)


@bp.get("/availability-blocks/<block_id>/quote", responses={200: QuoteDocument})
@login_required
def get_quote(path: BlockPath) -> dict[str, object]:
    """What booking this block costs now: the same function the booking job uses."""
    return QuoteDocument.model_validate(pricing_rules.quote(current_principal(), path.block_id)).model_dump(mode="json")


@bp.post("/pricing/recalculations", responses={202: JobAccepted, **problems(404)})
@login_required
@idempotent
def recalculate_prices(body: RecalculationRequest) -> tuple[dict[str, object], int, dict[str, str]]:
    """Refresh the stored price of future available blocks (a job; result ``{"blocks_updated"}``)."""
    document = recalculation.request(
        current_principal(),
        body.building_id,
        request_actor(),
        callback_url=validated_callback_url(body.callback_url),
    )
    return document, 202, {"Location": document["status_url"]}
