"""The stats query window and answer shape, shared by building and organization stats."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.problems import Problem
from app.representation import Document

DEFAULT_WINDOW_DAYS = 30


def _no_timestamp(value: Any) -> Any:
    if isinstance(value, int | float) or (
        isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    ):
        raise ValueError("an RFC 3339 date-time or a date is expected")
    return value


#: A date (UTC midnight) or a date-time (UTC when it has no offset); never a timestamp number.
Instant = Annotated[datetime | date, BeforeValidator(_no_timestamp)]


class StatsQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: Instant | None = Field(default=None, alias="from", description="Start (inclusive); default 30 days ago.")
    to: Instant | None = Field(default=None, description="End (exclusive); default now.")


class BookingsByStatus(Document):
    """How many bookings of the window are in each status (every status is present, 0 if none)."""

    pending: int
    confirmed: int
    checked_in: int
    checked_out: int
    cancelled: int
    no_show: int
    overstay: int


class StatsResponse(Document):
    """A building's figures over the window."""

    bookings_by_status: BookingsByStatus
    revenue_clp: int
    commission_clp: int
    occupancy: float
    offered_hours: float
    booked_hours: float


class BuildingStatsItem(StatsResponse):
    """One building's figures inside an organization's."""

    building_id: str
    name: str


class OrganizationStats(StatsResponse):
    """The sums over the buildings the caller may see, and each building's own figures."""

    buildings: list[BuildingStatsItem]


def _instant(value: datetime | date) -> datetime:
    """Dates are UTC midnights; datetimes without an offset are UTC; all end up in UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time.min, tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise Problem(
            "validation-error", "The instant is out of range.", errors=[{"pointer": "/from", "detail": "out of range"}]
        ) from exc


def stats_window(query: StatsQuery) -> tuple[datetime, datetime]:
    end = _instant(query.to) if query.to else datetime.now(UTC)
    try:
        start = _instant(query.from_) if query.from_ else end - timedelta(days=DEFAULT_WINDOW_DAYS)
    except OverflowError as exc:  # 'to' within 30 days of the year 1
        raise Problem(
            "validation-error", "The window is out of range.", errors=[{"pointer": "/to", "detail": "out of range"}]
        ) from exc
    if end <= start:
        raise Problem(
            "validation-error", "'to' must be after 'from'.", errors=[{"pointer": "/to", "detail": "after from"}]
        )
    return start, end
