"""``/v1/bookings`` and ``/v1/gate``: booking and cancelling (jobs), reading, the gate (synchronous)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from flask_openapi3 import Tag
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.api.callbacks import validated_callback_url
from app.api.context import BEARER_SECURITY, client_ip, current_principal, login_required, request_actor
from app.api.idempotency import idempotent
from app.api.openapi import APIBlueprint, problems
from app.api.pages import PageQuery
from app.api.schemas import (
    CallbackField,
    JobAccepted,
    JsonInt,
    PersonName,
    StrictModel,
    UtcDatetime,
    exactly_one_of,
    no_nulls,
)
from app.domain.bookings import InvalidPlate, normalize_plate
from app.domain.identity import InvalidIdentity, normalize_phone
from app.jobs import submit
from app.jobs.results import BookingDocument
from app.models import Booking
from app.representation import Document
from app.security import rbac
from app.security.rbac import Capability
from app.services import booking_documents, booking_queries, gate

bp = APIBlueprint("bookings", __name__, url_prefix="/v1", abp_tags=[Tag(name="bookings")], abp_security=BEARER_SECURITY)


class BookingRequest(CallbackField):
    availability_block_id: uuid.UUID
    visitor_name: PersonName
    vehicle_plate: str = Field(min_length=1, max_length=32, description="Normalized: AB-12·34 -> AB1234 (4-8).")
    visitor_phone: str | None = Field(default=None, max_length=32, description="E.164, or a 9-digit Chilean mobile.")
    expected_price_clp: JsonInt | None = Field(
        default=None, ge=0, description="Refused with price-changed if it differs."
    )

    @field_validator("vehicle_plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        try:
            return normalize_plate(value)
        except InvalidPlate as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("visitor_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_phone(value)
        except InvalidIdentity as exc:
            raise ValueError(str(exc)) from exc


class BookingPath(BaseModel):
    booking_id: uuid.UUID


class BookingPage(Document):
    items: list[BookingDocument]
    next_cursor: str | None


class BookingListQuery(PageQuery):
    model_config = ConfigDict(populate_by_name=True)

    status: Literal["pending", "confirmed", "checked_in", "checked_out", "cancelled", "no_show", "overstay"] | None = (
        None
    )
    from_: UtcDatetime | None = Field(default=None, alias="from", description="Blocks starting at or after.")
    to: UtcDatetime | None = Field(default=None, description="Blocks starting before.")


class CancelRequest(CallbackField):
    pass


class LookupRequest(StrictModel):
    """Exactly one of ``confirmation_code`` or ``vehicle_plate``."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("confirmation_code", "vehicle_plate"))

    confirmation_code: str | None = Field(default=None, min_length=1, max_length=16)
    vehicle_plate: str | None = Field(default=None, min_length=1, max_length=32)

    @model_validator(mode="before")
    @classmethod
    def _no_null_key(cls, data: Any) -> Any:
        return no_nulls(data, ("confirmation_code", "vehicle_plate"))

    @model_validator(mode="after")
    def _exactly_one(self) -> LookupRequest:
        if (self.confirmation_code is None) == (self.vehicle_plate is None):
            raise ValueError("send exactly one of confirmation_code or vehicle_plate")
        return self


class GateRequest(StrictModel):
    observed_plate: str | None = Field(default=None, max_length=32)


def _document(booking: Booking) -> dict[str, object]:
    return BookingDocument.of(booking, booking_documents.spot_number_of(booking)).model_dump(mode="json")


@bp.post("/bookings", responses={202: JobAccepted})
@login_required
@idempotent
def create_booking(body: BookingRequest) -> tuple[dict[str, object], int, dict[str, str]]:
    """Book a block for a visitor (resident). A ``booking.create`` job: poll it or pass a callback_url."""
    rbac.require(current_principal(), Capability.BOOK)
    payload = {**body.model_dump(mode="json", exclude={"callback_url"}), "ip": client_ip()}
    document = submit(
        "booking.create",
        payload,
        request_actor(),
        callback_url=validated_callback_url(body.callback_url),
    )
    return document, 202, {"Location": document["status_url"]}


@bp.get("/bookings/<booking_id>", responses={200: BookingDocument})
@login_required
def get_booking(path: BookingPath) -> dict[str, object]:
    """A booking of yours, or of a building you staff."""
    return _document(booking_queries.visible_booking(current_principal(), path.booking_id, request_actor()))


@bp.get("/bookings", responses={200: BookingPage})
@login_required
def list_bookings(query: BookingListQuery) -> dict[str, object]:
    """Residents: their own bookings; staff: the bookings of the buildings they work in."""
    rows, next_cursor = booking_queries.list_bookings(
        current_principal(),
        status=query.status,
        start=query.from_,
        end=query.to,
        limit=query.limit,
        cursor=query.cursor,
        actor=request_actor(),
    )
    return BookingPage(items=booking_documents.booking_documents(rows), next_cursor=next_cursor).model_dump(mode="json")


@bp.post("/bookings/<booking_id>/cancel", responses={202: JobAccepted, **problems(409)})
@login_required
@idempotent
def cancel_booking(path: BookingPath, body: CancelRequest) -> tuple[dict[str, object], int, dict[str, str]]:
    """Cancel a booking (the resident before the block starts, or the building's staff). A job."""
    booking_queries.booking_for(current_principal(), path.booking_id, Capability.CANCEL_BOOKING)
    document = submit(
        "booking.cancel",
        {"booking_id": str(path.booking_id)},
        request_actor(),
        callback_url=validated_callback_url(body.callback_url),
    )
    return document, 202, {"Location": document["status_url"]}


@bp.post("/gate/lookup", responses={200: BookingDocument, **problems(404)})
@login_required
def lookup_booking(body: LookupRequest) -> dict[str, object]:
    """Find a booking of your building by confirmation code or vehicle plate (concierge, building_admin)."""
    return _document(
        gate.lookup(current_principal(), confirmation_code=body.confirmation_code, vehicle_plate=body.vehicle_plate)
    )


@bp.post("/bookings/<booking_id>/check-in", responses={200: BookingDocument, **problems(409)})
@login_required
def check_in(path: BookingPath, body: GateRequest) -> dict[str, object]:
    """Check the guest in: from 30 minutes before the block starts until it ends, once."""
    return _document(gate.check_in(current_principal(), path.booking_id, body.observed_plate, request_actor()))


@bp.post("/bookings/<booking_id>/check-out", responses={200: BookingDocument, **problems(409)})
@login_required
def check_out(path: BookingPath, body: GateRequest) -> dict[str, object]:
    """Check the guest out."""
    return _document(gate.check_out(current_principal(), path.booking_id, body.observed_plate, request_actor()))
