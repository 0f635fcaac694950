"""Residents: self sign-up (``POST /v1/auth/register``) and verification by the building's staff."""

from __future__ import annotations

import uuid
from typing import Literal

from flask import request
from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from app.api.context import BEARER_SECURITY, client_ip, current_principal, login_required, request_actor
from app.api.openapi import APIBlueprint, problems
from app.api.schemas import Code, Email, PersonName, StrictModel
from app.domain.timefmt import rfc3339
from app.models import Resident
from app.representation import Document
from app.security.rate_limits import limit_class
from app.services import residents
from app.services.audit import Actor

bp = APIBlueprint("residents", __name__, url_prefix="/v1", abp_tags=[Tag(name="residents")])


class RegisterRequest(StrictModel):
    email: Email
    password: str = Field(min_length=1, max_length=1024, description="At least 10 characters.")
    first_name: PersonName
    last_name: PersonName
    rut: str = Field(min_length=2, max_length=16, examples=["12.345.678-5"])
    phone: str | None = Field(default=None, max_length=32, examples=["+56912345678"])
    building_id: uuid.UUID
    unit_number: Code


class Registered(Document):
    id: str
    status: Literal["pending_verification"]


class ResidentPath(BaseModel):
    resident_id: uuid.UUID


class ResidentDocument(Document):
    id: str
    user_id: str
    email: str
    building_id: str
    unit_id: str
    unit_number: str
    first_name: str
    last_name: str
    rut: str | None = Field(description="null once the resident was anonymized (Law 21.719)")
    phone: str | None
    status: str
    verified_at: str | None
    created_at: str

    @classmethod
    def of(cls, resident: Resident, unit_number: str, email: str) -> ResidentDocument:
        """From the profile, its unit's number and its account's e-mail (lists read them in one query)."""
        return cls(
            id=str(resident.id),
            user_id=str(resident.user_id),
            email=email,
            building_id=str(resident.building_id),
            unit_id=str(resident.unit_id),
            unit_number=unit_number,
            first_name=resident.first_name,
            last_name=resident.last_name,
            rut=resident.rut,
            phone=resident.phone,
            status=str(resident.status),
            verified_at=rfc3339(resident.verified_at),
            created_at=rfc3339(resident.created_at) or "",
        )


class ResidentPage(Document):
    items: list[ResidentDocument]
    next_cursor: str | None


@bp.post("/auth/register", responses={201: Registered, **problems(404, 409)})
@limit_class("register")
def register(body: RegisterRequest) -> tuple[dict[str, object], int]:
    """Resident self sign-up: an unverified resident of one unit, who can log in but not book yet."""
    resident = residents.register(
        residents.Registration(**body.model_dump()),
        Actor("human", None, client_ip(), request.headers.get("User-Agent")),
    )
    return Registered(id=str(resident.id), status="pending_verification").model_dump(mode="json"), 201


@bp.post(
    "/residents/<resident_id>/verify", responses={200: ResidentDocument, **problems(409)}, security=BEARER_SECURITY
)
@login_required
def verify_resident(path: ResidentPath) -> dict[str, object]:
    """Verify a resident of your building (org_admin, building_admin); they may book from now on."""
    verified = residents.verify(current_principal(), path.resident_id, request_actor())
    return ResidentDocument.of(*verified).model_dump(mode="json")
