"""Availability generation: two 11-hour blocks per local day for the next 30 days, per active spot.

08:00-19:00 and 20:00-07:00 (next day) in the building's own timezone: local wall-clock times are
converted by PostgreSQL (``AT TIME ZONE``), so blocks stay at 08:00 and 20:00 local across DST
changes (a night block spanning a change lasts 10 or 12 real hours). One set-based INSERT ...
SELECT per building; ``ON CONFLICT DO NOTHING`` (which also honours the no-overlap exclusion
constraint) makes it idempotent and lets hand-made blocks win: a second run creates nothing.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select, text

from app.extensions import db
from app.jobs import JobRun, submit
from app.models import Building
from app.services import audit, domain_events

HORIZON_DAYS = 30

_GENERATE = text(
    """
    WITH building AS (
        SELECT b.id, b.timezone, b.default_base_price_clp AS price,
               coalesce(CAST(:today AS date), (now() AT TIME ZONE b.timezone)::date) AS today
        FROM buildings b
        WHERE b.id = :building_id AND b.is_active
    ),
    candidates AS (
        SELECT s.id AS spot_id, building.id AS building_id, building.price,
               ((day::date + w.starts) AT TIME ZONE building.timezone) AS start_at,
               ((day::date + w.end_day_offset + w.ends) AT TIME ZONE building.timezone) AS end_at
        FROM building
        JOIN visitor_spots s ON s.building_id = building.id AND s.is_active
        CROSS JOIN generate_series(building.today, building.today + :days, interval '1 day') AS day
        CROSS JOIN (VALUES (time '08:00', 0, time '19:00'), (time '20:00', 1, time '07:00'))
            AS w(starts, end_day_offset, ends)
    ),
    wanted AS (
        SELECT * FROM candidates
        WHERE CAST(:today AS date) IS NOT NULL
           OR (start_at > now() AND start_at <= now() + make_interval(days => :days))
    ),
    inserted AS (
        INSERT INTO availability_blocks
            (id, spot_id, building_id, start_at, end_at, duration, base_price_clp, price_clp, status, version)
        SELECT gen_random_uuid(), spot_id, building_id, start_at, end_at, '11h', price, price, 'available', 1
        FROM wanted
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM wanted) AS wanted, (SELECT count(*) FROM inserted) AS created
    """
)


def generate_for_building(
    building_id: uuid.UUID, days: int = HORIZON_DAYS, today: date | None = None
) -> dict[str, int]:
    """Insert the missing blocks of one building in the caller's transaction; return the counts.

    By default the window is the next ``days`` days from now (never a block in the past). ``today``
    (a local date) pins the window instead, to the ``days + 1`` local days from it: for backfills
    and for tests that must cross a given DST change whatever the date they run on.
    """
    params = {"building_id": building_id, "days": days, "today": today}
    wanted, created = db.session.execute(_GENERATE, params).one()
    return {"created": int(created), "skipped": int(wanted) - int(created)}


def generate(run: JobRun) -> dict[str, Any]:
    """The ``availability.generate`` job: one building, result ``{"created", "skipped"}``."""
    building_id = uuid.UUID(run.payload["building_id"])
    counts = generate_for_building(building_id)
    audit.record(
        "availability.generated",
        audit.Actor.job(run.owner_user_id),
        entity_type="building",
        entity_id=building_id,
        details=counts,
    )
    domain_events.availability_generated(run.id, building_id, counts["created"], counts["skipped"])
    return counts


def submit_daily() -> int:
    """Beat's daily run: one system-owned generation job per active building."""
    ids = list(db.session.execute(select(Building.id).where(Building.is_active)).scalars())
    for building_id in ids:
        submit("availability.generate", {"building_id": str(building_id)}, audit.Actor.system())
    return len(ids)
