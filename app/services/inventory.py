"""A building's units, visitor spots and availability blocks (manual ones; generation is a job)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import AvailabilityBlock, BlockStatus, Building, Unit, VisitorSpot
from app.models.pagination import paginate
from app.problems import Problem
from app.security.rbac import Capability, Principal
from app.services import audit
from app.services.organizations import building_of, get_building, read_building, unique_violation
from app.unit_of_work import stored


def _insert(row: Any, conflict: str) -> None:
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError as exc:  # the unit of work rolls back
        if unique_violation(exc):
            raise Problem("conflict", conflict) from exc
        raise


def _create_in_building(
    principal: Principal, building_id: uuid.UUID, row: Unit | VisitorSpot, conflict: str, actor: audit.Actor
) -> None:
    """Insert a unit or spot of a building its caller manages; a duplicate number is 409."""
    get_building(principal, building_id, Capability.MANAGE)
    _insert(row, conflict)
    kind = "unit" if isinstance(row, Unit) else "spot"
    audit.record(
        f"{kind}.created", actor, entity_type=kind, entity_id=row.id, details={"building_id": str(building_id)}
    )


def create_unit(
    principal: Principal, building_id: uuid.UUID, unit_number: str, floor: int | None, actor: audit.Actor
) -> Unit:
    unit = Unit(building_id=building_id, unit_number=unit_number.strip(), floor=floor)
    _create_in_building(principal, building_id, unit, "This building already has a unit with that number.", actor)
    return stored(unit)


def create_spot(
    principal: Principal, building_id: uuid.UUID, spot_number: str, description: str | None, actor: audit.Actor
) -> VisitorSpot:
    spot = VisitorSpot(building_id=building_id, spot_number=spot_number.strip(), description=description)
    _create_in_building(principal, building_id, spot, "This building already has a spot with that number.", actor)
    return stored(spot)


def list_units(
    principal: Principal, building_id: uuid.UUID, *, limit: int, cursor: str | None, actor: audit.Actor
) -> tuple[list[Unit], str | None]:
    read_building(principal, building_id, actor, "building.units")
    query = select(Unit).where(Unit.building_id == building_id)
    return paginate(query, [Unit.unit_number, Unit.id], limit=limit, cursor=cursor)


def list_spots(
    principal: Principal, building_id: uuid.UUID, *, limit: int, cursor: str | None, actor: audit.Actor
) -> tuple[list[VisitorSpot], str | None]:
    read_building(principal, building_id, actor, "building.spots")
    query = select(VisitorSpot).where(VisitorSpot.building_id == building_id)
    return paginate(query, [VisitorSpot.spot_number, VisitorSpot.id], limit=limit, cursor=cursor)


def _spot_in_scope(principal: Principal, spot_id: uuid.UUID, capability: Capability) -> tuple[VisitorSpot, Building]:
    spot = db.session.get(VisitorSpot, spot_id)
    building = building_of(principal, spot, capability, missing="No such spot.")
    return spot, building  # type: ignore[return-value]


def create_block(
    principal: Principal,
    spot_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    duration: str,
    base_price_clp: int,
    actor: audit.Actor,
) -> AvailabilityBlock:
    spot, building = _spot_in_scope(principal, spot_id, Capability.MANAGE)
    if end <= start:
        raise Problem(
            "validation-error", "end must be after start.", errors=[{"pointer": "/end", "detail": "after start"}]
        )
    now = db.session.execute(select(func.now())).scalar_one()
    if start <= now:
        raise Problem(
            "validation-error",
            "A block must start in the future.",
            errors=[{"pointer": "/start", "detail": "in the past"}],
        )
    block = AvailabilityBlock(
        spot_id=spot.id,
        building_id=building.id,
        start_at=start,
        end_at=end,
        duration=duration,
        base_price_clp=base_price_clp,
        price_clp=base_price_clp,
        status=BlockStatus.AVAILABLE,
    )
    _insert(block, "The block overlaps another block of this spot.")
    audit.record("block.created", actor, entity_type="availability_block", entity_id=block.id)
    return stored(block)


def set_block_status(
    principal: Principal, block_id: uuid.UUID, *, target: BlockStatus, actor: audit.Actor
) -> AvailabilityBlock:
    """Staff block or unblock by hand: ``available <-> blocked`` with a compare-and-swap."""
    block = db.session.get(AvailabilityBlock, block_id)
    building_of(principal, block, Capability.MANAGE, missing="No such availability block.")
    assert block is not None
    source = BlockStatus.BLOCKED if target == BlockStatus.AVAILABLE else BlockStatus.AVAILABLE
    if block.status == target:
        return block
    if block.status != source:
        raise Problem("invalid-transition", f"A {block.status} block cannot become {target}.")
    swapped = db.session.execute(
        update(AvailabilityBlock)
        .where(
            AvailabilityBlock.id == block.id,
            AvailabilityBlock.version == block.version,
            AvailabilityBlock.status == source,
        )
        .values(status=target, version=AvailabilityBlock.version + 1, updated_at=func.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if swapped != 1:
        raise Problem("version-conflict", "The block changed meanwhile; read it again.")
    audit.record(
        f"block.{'blocked' if target == BlockStatus.BLOCKED else 'unblocked'}",
        actor,
        entity_type="availability_block",
        entity_id=block.id,
    )
    return db.session.get(AvailabilityBlock, block_id, populate_existing=True)  # type: ignore[return-value]


def search_availability(
    principal: Principal,
    building_id: uuid.UUID,
    *,
    start: datetime | None,
    end: datetime | None,
    duration: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    actor: audit.Actor,
) -> tuple[list[tuple[AvailabilityBlock, str]], str | None]:
    """Blocks of the building starting in [start, end) (default: from now, 30 days), soonest first."""
    read_building(principal, building_id, actor, "building.availability")
    query = select(AvailabilityBlock).where(AvailabilityBlock.building_id == building_id)
    query = query.where(AvailabilityBlock.start_at >= (start or func.now()))
    query = query.where(AvailabilityBlock.start_at < (end or func.now() + func.make_interval(0, 0, 0, 30)))
    query = query.where(AvailabilityBlock.status == (status or BlockStatus.AVAILABLE))
    if duration:
        query = query.where(AvailabilityBlock.duration == duration)
    blocks, next_cursor = paginate(
        query, [AvailabilityBlock.start_at, AvailabilityBlock.id], limit=limit, cursor=cursor
    )
    numbers = dict(
        db.session.execute(
            select(VisitorSpot.id, VisitorSpot.spot_number).where(VisitorSpot.id.in_({b.spot_id for b in blocks}))
        ).all()
    )
    return [(block, numbers[block.spot_id]) for block in blocks], next_cursor
