"""``pricing.recalculate``: refresh the stored price of every future available block.

Search shows ``availability_blocks.price_clp`` without computing anything per row; this job keeps
it equal to what a booking would pay now. Set-based SQL: each batch picks the next ids in
primary-key order and updates, in one statement, only the blocks whose price differs from
``ceil(base * multiplier of the winning rule)`` (PostgreSQL numeric: exact, like
``domain.pricing``). Batches commit with the job's progress; memory stays flat whatever the size.
Idempotent: a second run updates nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from app.extensions import db
from app.jobs import JobRun, submit
from app.models import AvailabilityBlock, BlockStatus, Building
from app.security import rbac
from app.security.rbac import Capability, Principal
from app.services import audit, domain_events
from app.services.organizations import get_building

BATCH = 5000
NIGHTLY_LOCAL_HOUR = 3

_UPDATE_BATCH = text(
    """
    WITH batch AS (
        SELECT id FROM availability_blocks
        WHERE building_id = ANY(CAST(:buildings AS uuid[])) AND status = 'available' AND start_at > now()
          AND id > CAST(:after AS uuid)
        ORDER BY id
        LIMIT :limit
    ),
    priced AS (
        SELECT b.id, CAST(ceil(b.base_price_clp * coalesce(r.multiplier, 1)) AS integer) AS price
        FROM availability_blocks b
        JOIN batch ON batch.id = b.id
        LEFT JOIN LATERAL (
            SELECT multiplier FROM pricing_rules
            WHERE building_id = b.building_id AND is_active AND starts_at <= b.start_at AND ends_at > b.start_at
            ORDER BY priority DESC, created_at DESC
            LIMIT 1
        ) r ON true
    ),
    changed AS (
        UPDATE availability_blocks b SET price_clp = priced.price, updated_at = now()
        FROM priced
        WHERE b.id = priced.id AND b.price_clp <> priced.price
        RETURNING 1
    )
    SELECT (SELECT max(id::text) FROM batch) AS last_id,
           (SELECT count(*) FROM batch) AS seen,
           (SELECT count(*) FROM changed) AS updated
    """
)


def recalculate(run: JobRun) -> dict[str, Any]:
    building_ids = [uuid.UUID(b) for b in run.payload.get("building_ids") or []]
    if not building_ids:
        building_ids = list(db.session.execute(select(Building.id).where(Building.is_active)).scalars())
    total = db.session.execute(
        select(func.count())
        .select_from(AvailabilityBlock)
        .where(
            AvailabilityBlock.building_id.in_(building_ids),
            AvailabilityBlock.status == BlockStatus.AVAILABLE,
            AvailabilityBlock.start_at > func.now(),
        )
    ).scalar_one()
    done = updated = 0
    after = "00000000-0000-0000-0000-000000000000"
    run.checkpoint(0, total)
    while True:
        last_id, seen, changed = db.session.execute(
            _UPDATE_BATCH, {"buildings": [str(b) for b in building_ids], "after": after, "limit": BATCH}
        ).one()
        if not seen:
            break
        done, updated, after = done + seen, updated + changed, last_id
        run.checkpoint(min(done, max(total, done)), max(total, done))
    audit.record(
        "pricing.recalculated",
        audit.Actor.job(run.owner_user_id),
        entity_type="job",
        entity_id=run.id,
        details={"buildings": len(building_ids), "blocks_updated": updated},
    )
    domain_events.pricing_recalculated(run.id, building_ids, updated)
    return {"blocks_updated": updated}


def request(
    principal: Principal,
    building_id: uuid.UUID | None,
    actor: audit.Actor,
    *,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """Submit a recalculation of one building, or of every building the caller manages."""
    if building_id is not None:
        building_ids = [str(get_building(principal, building_id, Capability.MANAGE).id)]
    elif rbac.can(principal, Capability.MANAGE, rbac.PLATFORM_SCOPE):
        building_ids = []  # who manages the platform's own rows manages every building
    else:
        managed = db.session.execute(
            select(Building.id).where(rbac.scope_filter(principal, Building, Capability.MANAGE))
        )
        building_ids = [str(b) for b in managed.scalars()]
        if not building_ids:
            raise rbac.Forbidden("You manage no building.")
    return submit(
        "pricing.recalculate",
        {"building_ids": building_ids},
        actor,
        callback_url=callback_url,
    )


def submit_nightly(now: datetime | None = None) -> int:
    """Beat runs this hourly: buildings where it is now 03:00 local get their recalculation job."""
    moment = now or datetime.now(ZoneInfo("UTC"))
    due = [
        building_id
        for building_id, timezone in db.session.execute(
            select(Building.id, Building.timezone).where(Building.is_active)
        )
        if moment.astimezone(ZoneInfo(timezone)).hour == NIGHTLY_LOCAL_HOUR
    ]
    for building_id in due:
        submit("pricing.recalculate", {"building_ids": [str(building_id)]}, audit.Actor.system())
    return len(due)
