"""Correctness checks the scenarios share, read straight from the database (never from the API alone)."""

from __future__ import annotations

from typing import Any

from bench.stack import BenchStack

SPOT_UNAVAILABLE = "/problems/spot-unavailable"


def jobs_summary(stack: BenchStack, ids: list[str]) -> dict[str, int]:
    """How the jobs with these ids stand in the ``jobs`` table."""
    (row,) = stack.sql(
        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),"
        " count(*) FILTER (WHERE attempts = 1) FROM jobs WHERE id = ANY(%s::uuid[])",
        (ids,),
    )
    found, succeeded, failed, once = (int(v) for v in row)
    return {"found": found, "succeeded": succeeded, "failed": failed, "attempts_eq_1": once}


def live_bookings(stack: BenchStack, block_ids: list[str]) -> dict[str, int]:
    """Blocks among ``block_ids`` with exactly one live (not cancelled) booking, with more, with none."""
    (row,) = stack.sql(
        """
        WITH wanted AS (SELECT unnest(%s::uuid[]) AS id),
        live AS (
            SELECT w.id, count(k.id) AS n
            FROM wanted w LEFT JOIN bookings k ON k.block_id = w.id AND k.status <> 'cancelled'
            GROUP BY w.id
        )
        SELECT count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE n = 0),
               (SELECT count(*) FROM availability_blocks b JOIN wanted w ON w.id = b.id WHERE b.status = 'reserved')
        FROM live
        """,
        (block_ids,),
    )
    one, more, none, reserved = (int(v) for v in row)
    return {"blocks_with_one_live_booking": one, "with_more": more, "with_none": none, "blocks_reserved": reserved}


def error_type(document: dict[str, Any]) -> str | None:
    error = document.get("error") or {}
    return error.get("type") if isinstance(error, dict) else None


def booking_body(block_id: str, index: int) -> dict[str, Any]:
    """A valid booking request; the plate varies (``BK0001``...) like a real stream's."""
    return {
        "availability_block_id": block_id,
        "visitor_name": "Visita Benchmark",
        "vehicle_plate": f"BK{index % 10000:04d}",
    }
