"""``/v1/memberships/{id}``: removing a staff membership (org_admin of its organization, platform_admin)."""

from __future__ import annotations

import uuid

from flask import Response
from flask_openapi3 import Tag
from pydantic import BaseModel

from app.api.context import BEARER_SECURITY, current_principal, login_required, request_actor
from app.api.openapi import APIBlueprint, problems
from app.services import staff

bp = APIBlueprint(
    "memberships",
    __name__,
    url_prefix="/v1/memberships",
    abp_tags=[Tag(name="organizations")],
    abp_security=BEARER_SECURITY,
)


class MembershipPath(BaseModel):
    membership_id: uuid.UUID


@bp.delete("/<membership_id>", responses={204: None, **problems(409)})
@login_required
def remove_membership(path: MembershipPath) -> Response:
    """Remove a membership: it stops counting on that person's next request; the last org_admin stays (409)."""
    staff.remove_membership(current_principal(), path.membership_id, request_actor())
    return Response(status=204)
