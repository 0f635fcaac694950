"""``generate``: the ``availability.generate`` job against one hand-written ``INSERT ... SELECT``.

Data: one organization with two identical buildings (same timezone, America/Santiago, and
base price), each with 1,000 active spots (``--quick``: 50) and no blocks, inserted set-based.

Baseline: one ``INSERT ... SELECT generate_series`` (below, ``BASELINE_INSERT``) into
``availability_blocks`` for the second building, producing exactly what generation promises: for
every active spot, blocks 08:00-19:00 and 20:00-07:00 local time for each day whose block starts in
the next 30 days (about 60 per spot, 60,000 rows in all); timed from ``execute`` to ``commit``.

Figure: ``POST /v1/buildings/{first}/availability/generate`` by the organization's org_admin
(logged in with TOTP), awaited with ``GET /v1/jobs/{id}?wait=`` until terminal: the time from the
POST to the terminal answer. Ratio figure / baseline (lower is better), target <= 2.0. Both phases
start after ``VACUUM ANALYZE`` and ``CHECKPOINT``; the baseline goes first, so the job inserts into
a table already holding the baseline's rows (indexes slightly larger: to the job's disadvantage).

Checks: the job succeeded; it created as many rows as the baseline inserted (and more than 0);
the two buildings hold the same blocks (spot number, start, end, duration, prices, status) in
both directions; a second generation job creates 0 and skips them all.

The job's window is "now"; if a 08:00/20:00 local boundary passed between the two phases (a few
seconds apart) the counts would differ by one block per spot and the checks would say so.
"""

from __future__ import annotations

import time

from bench.client import Api
from bench.cpu import CpuSampler, describe
from bench.report import Figure, ScenarioResult
from bench.scenarios import ScenarioContext
from bench.stack import BenchStack, say
from bench.tenant import add_spots, login_staff, seed_tenant

NAME = "generate"
ORDER = 6  # where it runs in a full run (the order)
DESCRIPTION = "availability generation job, 1,000 spots x 30 days vs one INSERT ... SELECT generate_series"
TARGET = 2.0
SPOTS = {"full": 1000, "quick": 50}
HORIZON_DAYS = 30
JOB_TIMEOUT_S = 900.0

#: The baseline: the blocks generation promises, in one statement, as one would write it by hand.
BASELINE_INSERT = """
    INSERT INTO availability_blocks
        (id, spot_id, building_id, start_at, end_at, duration, base_price_clp, price_clp, status, version)
    SELECT gen_random_uuid(), s.id, b.id, w.start_at, w.end_at, '11h',
           b.default_base_price_clp, b.default_base_price_clp, 'available', 1
    FROM buildings b
    JOIN visitor_spots s ON s.building_id = b.id AND s.is_active
    CROSS JOIN LATERAL generate_series(
        (now() AT TIME ZONE b.timezone)::date, (now() AT TIME ZONE b.timezone)::date + %(days)s, interval '1 day'
    ) AS d
    CROSS JOIN LATERAL (VALUES
        ((d::date + time '08:00') AT TIME ZONE b.timezone, (d::date + time '19:00') AT TIME ZONE b.timezone),
        ((d::date + time '20:00') AT TIME ZONE b.timezone, (d::date + 1 + time '07:00') AT TIME ZONE b.timezone)
    ) AS w(start_at, end_at)
    WHERE b.id = %(building)s AND w.start_at > now() AND w.start_at <= now() + make_interval(days => %(days)s)
"""

_SAME_BLOCKS = """
    SELECT count(*) FROM (
        (SELECT s.spot_number, a.start_at, a.end_at, a.duration, a.base_price_clp, a.price_clp, a.status
         FROM availability_blocks a JOIN visitor_spots s ON s.id = a.spot_id WHERE a.building_id = %(one)s
         EXCEPT
         SELECT s.spot_number, a.start_at, a.end_at, a.duration, a.base_price_clp, a.price_clp, a.status
         FROM availability_blocks a JOIN visitor_spots s ON s.id = a.spot_id WHERE a.building_id = %(other)s)
        UNION ALL
        (SELECT s.spot_number, a.start_at, a.end_at, a.duration, a.base_price_clp, a.price_clp, a.status
         FROM availability_blocks a JOIN visitor_spots s ON s.id = a.spot_id WHERE a.building_id = %(other)s
         EXCEPT
         SELECT s.spot_number, a.start_at, a.end_at, a.duration, a.base_price_clp, a.price_clp, a.status
         FROM availability_blocks a JOIN visitor_spots s ON s.id = a.spot_id WHERE a.building_id = %(one)s)
    ) AS differing
"""


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    spots = ctx.operations if ctx.operations is not None else SPOTS["quick" if ctx.quick else "full"]

    tenant = seed_tenant(stack, "generate", buildings=2, staff=True)
    job_building, baseline_building = tenant.buildings
    for building in tenant.buildings:
        add_spots(stack, building, spots)
    say(f"generate: seeded two buildings with {spots:,} spots each")

    stack.settle("availability_blocks", "visitor_spots")
    say("generate: baseline, one INSERT ... SELECT generate_series")
    baseline_s, inserted = _baseline(stack, baseline_building)
    say(f"generate: baseline {baseline_s:.2f} s, {inserted:,} rows")

    stack.settle("availability_blocks", "visitor_spots")
    say("generate: figure, the availability.generate job")
    with stack.running("api", "app_worker"):
        api = Api(stack.api_url or "")
        try:
            login_staff(api, tenant)
            path = f"/v1/buildings/{job_building}/availability/generate"
            sampler = CpuSampler(stack.process_groups())
            with ctx.profiled(NAME):
                started = time.perf_counter()
                first = api.submit_and_await(path, {}, timeout=JOB_TIMEOUT_S)
                figure_s = time.perf_counter() - started
            figure_cpu = sampler.cores()
            second = api.submit_and_await(path, {}, timeout=JOB_TIMEOUT_S)
        finally:
            api.close()
    say(f"generate: figure {figure_s:.2f} s")

    created = (first.get("result") or {}).get("created")
    again = second.get("result") or {}
    ((differing,),) = stack.sql(_SAME_BLOCKS, {"one": job_building, "other": baseline_building})
    counts = dict(
        stack.sql(
            "SELECT building_id::text, count(*) FROM availability_blocks WHERE building_id = ANY(%s::uuid[])"
            " GROUP BY building_id",
            (tenant.buildings,),
        )
    )
    checks = {
        "job_succeeded": first["status"] == "succeeded" and first.get("attempts") == 1,
        "same_row_counts": created == inserted > 0
        and counts.get(job_building) == counts.get(baseline_building) == inserted,
        "same_rows": int(differing) == 0,
        "second_run_creates_0": second["status"] == "succeeded"
        and again.get("created") == 0
        and again.get("skipped") == inserted,
    }
    return ScenarioResult(
        scenario=NAME,
        figure=Figure.duration(
            f"availability.generate job, {spots:,} spots x {HORIZON_DAYS} days ({created} blocks), POST to terminal",
            figure_s,
        ),
        baseline=Figure.duration(f"one INSERT ... SELECT generate_series of the same {inserted:,} blocks", baseline_s),
        target=TARGET,
        higher_is_better=False,
        checks=checks,
        details={
            "spots_per_building": spots,
            "baseline_rows_inserted": inserted,
            "job_result": first.get("result"),
            "second_job_result": again,
            "blocks_per_building": counts,
            "rows_differing_between_buildings": int(differing),
            "cpu_cores_used": {"figure": figure_cpu},
        },
        notes=[f"CPU cores used, figure: {describe(figure_cpu)}"],
    )


def _baseline(stack: BenchStack, building: str) -> tuple[float, int]:
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            began = time.perf_counter()
            cur.execute(BASELINE_INSERT, {"building": building, "days": HORIZON_DAYS})
            inserted = int(cur.rowcount)
            conn.commit()
            return time.perf_counter() - began, inserted
    finally:
        conn.close()
