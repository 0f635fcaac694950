"""``recalc``: the ``pricing.recalculate`` job against the one statement a DBA would write by hand.

Data (set-based SQL): one building with 1,000,000 future available blocks (2,000 spots x 500 blocks,
two a day over 250 days; ``--quick``: 100 spots x 200 = 20,000), base prices spread over
3,000-5,000 CLP, and 50 active pricing rules with overlapping intervals over the middle of the
horizon (the first and last weeks stay unpriced: those blocks keep their base price), distinct
priorities, fractional multipliers in [0.5, 4.4] (so ``ceil`` matters) or exactly 1 (a rule that
wins but changes nothing) and distinct creation times, plus 2 retired rules of top priority that
must be ignored.

Same starting state for both phases: the blocks are seeded with a stored price that differs from
the base, then before each phase every stored price is reset to its base (``UPDATE ... SET price_clp
= base_price_clp``), followed by ``VACUUM ANALYZE`` and ``CHECKPOINT``: both phases find the same
rows, the same statistics, and pages with the same free space.

Baseline: one hand-written ``UPDATE`` (below, ``BASELINE_UPDATE``): the winning rule of every
block in a ``LEFT JOIN LATERAL``, ``ceil(base * multiplier)``, only rows whose price changes;
timed from ``execute`` to ``commit``.

Figure: ``POST /v1/pricing/recalculations {building_id}`` by the building's org_admin (logged in
with TOTP), awaited with ``GET /v1/jobs/{id}?wait=`` until terminal; the time from the POST to
the terminal answer. Ratio figure / baseline (lower is better), target <= 1.5. Meanwhile the worker's
process group's RSS is sampled from ``/proc`` every 50 ms: its largest process must stay < 300 MB.

Checks: the job succeeded; its ``blocks_updated`` equals the rows the baseline changed (and that is
not 0); after the job every block's price equals the baseline's price for it (a full comparison
against a copy saved after the baseline); for 500 random blocks the stored price equals
``ceil(base * multiplier)`` of the winning rule computed in Python by ``app.domain.pricing`` after
the baseline and after the job.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from bench.client import Api
from bench.cpu import CpuSampler, describe
from bench.memory import RssSampler
from bench.report import Figure, ScenarioResult, Target
from bench.scenarios import ScenarioContext
from bench.stack import BenchError, BenchStack, say
from bench.tenant import add_blocks, add_spots, login_staff, seed_tenant

NAME = "recalc"
ORDER = 5  # where it runs in a full run (the order)
DESCRIPTION = "pricing.recalculate over 1,000,000 blocks and 50 rules vs one hand-written UPDATE; worker RSS"
TARGET = 1.5
RSS_TARGET_MB = 300.0
SPOTS = {"full": 2000, "quick": 100}
BLOCKS_PER_SPOT = {"full": 500, "quick": 200}
RULES = 50
RETIRED_RULES = 2
SAMPLE = 500
JOB_TIMEOUT_S = 3600.0

_RULES = """
    INSERT INTO pricing_rules (id, building_id, name, priority, starts_at, ends_at, multiplier, is_active, created_at)
    SELECT gen_random_uuid(), %(building)s, 'bench rule ' || i,
           CASE WHEN i < %(rules)s THEN (i * 7) %% %(rules)s ELSE 1000 + i END,
           t.starts_at, t.starts_at + make_interval(secs => (1 + i %% 5) * %(span_days)s * 86400.0 / 40),
           CASE WHEN i %% 10 = 3 THEN 1 ELSE round(0.5 + ((i * 11) %% 40) * 0.0987, 4) END,
           i < %(rules)s,
           now() - make_interval(secs => i)
    FROM generate_series(0, %(rules)s + %(retired)s - 1) AS i
    CROSS JOIN LATERAL (
        SELECT date_trunc('day', now()) + interval '1 day' + make_interval(secs => %(span_days)s * 86400.0 / 10)
               + make_interval(secs => ((i * 37) %% 50) * %(span_days)s * 86400.0 * 0.7 / 50) AS starts_at
    ) AS t
"""

#: The baseline: the same prices in one statement, as one would write it by hand.
BASELINE_UPDATE = """
    UPDATE availability_blocks b SET price_clp = priced.price, updated_at = now()
    FROM (
        SELECT x.id, CAST(ceil(x.base_price_clp * coalesce(r.multiplier, 1)) AS integer) AS price
        FROM availability_blocks x
        LEFT JOIN LATERAL (
            SELECT multiplier FROM pricing_rules
            WHERE building_id = x.building_id AND is_active AND starts_at <= x.start_at AND ends_at > x.start_at
            ORDER BY priority DESC, created_at DESC
            LIMIT 1
        ) r ON true
        WHERE x.building_id = %(building)s AND x.status = 'available' AND x.start_at > now()
    ) AS priced
    WHERE b.id = priced.id AND b.price_clp <> priced.price
"""

_RESET = (
    "UPDATE availability_blocks SET price_clp = base_price_clp WHERE building_id = %s AND price_clp <> base_price_clp"
)


@dataclass(frozen=True)
class _Rule:
    id: Any
    priority: int
    starts_at: datetime
    ends_at: datetime
    multiplier: Decimal
    created_at: datetime


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    size = "quick" if ctx.quick else "full"
    spots, per_spot = SPOTS[size], BLOCKS_PER_SPOT[size]
    if ctx.operations is not None:  # --jobs N: about N blocks
        per_spot = min(per_spot, max(2, ctx.operations))
        spots = max(1, ctx.operations // per_spot)

    tenant = seed_tenant(stack, "recalc", staff=True)
    building = tenant.building
    began = time.perf_counter()
    add_spots(stack, building, spots)
    blocks = add_blocks(stack, building, per_spot, vary_price=True, price_offset=1)
    stack.sql(_RULES, {"building": building, "rules": RULES, "retired": RETIRED_RULES, "span_days": per_spot // 2})
    say(f"recalc: seeded {blocks:,} blocks on {spots:,} spots and {RULES} rules in {time.perf_counter() - began:.1f} s")

    seed_s = time.perf_counter() - began
    say("recalc: baseline, one hand-written UPDATE")
    _reset(stack, building)
    before = _table_stats(stack)
    baseline_s, baseline_changed = _baseline(stack, building)
    baseline_stats = _table_stats(stack, since=before)
    say(f"recalc: baseline {baseline_s:.2f} s, {baseline_changed:,} rows changed")
    expected_table = f"bench_recalc_expected_{uuid.uuid4().hex[:8]}"
    stack.sql(
        f"CREATE UNLOGGED TABLE {expected_table} AS"  # noqa: S608 (a name of our own)
        " SELECT id, price_clp FROM availability_blocks WHERE building_id = %s",
        (building,),
    )
    rules = _rules(stack, building)
    sample_after_baseline = _sample_check(stack, building, rules)

    _reset(stack, building)
    before = _table_stats(stack)
    say("recalc: figure, the pricing.recalculate job")
    with stack.running("api", "app_worker"):
        api = Api(stack.api_url or "")
        try:
            login_staff(api, tenant)
            worker = stack.process_groups().get("worker")
            if worker is None:
                raise BenchError("the Celery worker is not running")
            with RssSampler(worker) as idle:
                time.sleep(0.3)
            sampler = CpuSampler(stack.process_groups())
            with RssSampler(worker) as rss, ctx.profiled(NAME):
                started = time.perf_counter()
                document = api.submit_and_await(
                    "/v1/pricing/recalculations", {"building_id": building}, timeout=JOB_TIMEOUT_S
                )
                figure_s = time.perf_counter() - started
            figure_cpu = sampler.cores()
        finally:
            api.close()
    memory = rss.summary()
    job_stats = _table_stats(stack, since=before)
    say(f"recalc: figure {figure_s:.2f} s; worker peak RSS {memory['peak_process_mb']} MB")

    sample_after_job = _sample_check(stack, building, rules)
    ((mismatched,),) = stack.sql(
        f"SELECT count(*) FROM availability_blocks b JOIN {expected_table} e ON e.id = b.id"  # noqa: S608 (our own name)
        " WHERE b.price_clp <> e.price_clp"
    )
    stack.sql(f"DROP TABLE {expected_table}")
    updated = (document.get("result") or {}).get("blocks_updated")
    checks = {
        "job_succeeded": document["status"] == "succeeded" and document.get("attempts") == 1,
        "blocks_updated_equals_baseline": updated == baseline_changed and baseline_changed > 0,
        "prices_equal_baseline": int(mismatched) == 0,
        "sample_matches_domain_after_baseline": sample_after_baseline["mismatches"] == 0,
        "sample_matches_domain_after_job": sample_after_job["mismatches"] == 0,
        "rss_sampled": memory["samples"] > 0 or not rss.available,
    }
    return ScenarioResult(
        scenario=NAME,
        figure=Figure.duration(
            f"pricing.recalculate job over {blocks:,} blocks and {RULES} rules, POST to terminal", figure_s
        ),
        baseline=Figure.duration(f"one hand-written set-based UPDATE of the same {blocks:,} blocks", baseline_s),
        target=TARGET,
        higher_is_better=False,
        extra_targets=[Target("worker peak RSS", memory["peak_process_mb"], "MB", "<", RSS_TARGET_MB)],
        checks=checks,
        details={
            "blocks": blocks,
            "spots": spots,
            "blocks_per_spot": per_spot,
            "seed_seconds": round(seed_s, 1),
            "rules": RULES,
            "retired_rules": RETIRED_RULES,
            "baseline_rows_changed": baseline_changed,
            "job_blocks_updated": updated,
            "prices_differing_from_baseline": int(mismatched),
            "sample_after_baseline": sample_after_baseline,
            "sample_after_job": sample_after_job,
            "worker_rss_mb": {"idle": idle.summary(), "during_job": memory},
            "row_updates": {"baseline": baseline_stats, "job": job_stats},
            "cpu_cores_used": {"figure": figure_cpu},
        },
        notes=[
            f"row versions written: baseline {baseline_stats['updated']:,} ({baseline_stats['hot']:,} HOT), "
            f"job {job_stats['updated']:,} ({job_stats['hot']:,} HOT)",
            f"worker RSS: idle {idle.summary()['peak_process_mb']} MB, peak during the job "
            f"{memory['peak_process_mb']} MB per process, {memory['peak_group_mb']} MB for the whole worker",
            f"CPU cores used, figure: {describe(figure_cpu)}",
        ],
    )


def _reset(stack: BenchStack, building: str) -> None:
    """Every stored price back to its base, then the same vacuumed, analyzed, checkpointed state."""
    stack.sql(_RESET, (building,))
    stack.settle("availability_blocks", "pricing_rules")


def _table_stats(stack: BenchStack, since: dict[str, int] | None = None) -> dict[str, int]:
    """Row updates of ``availability_blocks`` and how many were HOT (no index touched), as counted
    by PostgreSQL's statistics (flushed by other backends within a second: we wait that long)."""
    time.sleep(1.1)
    ((updated, hot),) = stack.sql(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'availability_blocks'"
    )
    now = {"updated": int(updated), "hot": int(hot)}
    if since is None:
        return now
    return {key: now[key] - since[key] for key in now}


def _baseline(stack: BenchStack, building: str) -> tuple[float, int]:
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            began = time.perf_counter()
            cur.execute(BASELINE_UPDATE, {"building": building})
            changed = int(cur.rowcount)
            conn.commit()
            return time.perf_counter() - began, changed
    finally:
        conn.close()


def _rules(stack: BenchStack, building: str) -> list[_Rule]:
    rows = stack.sql(
        "SELECT id, priority, starts_at, ends_at, multiplier, created_at FROM pricing_rules"
        " WHERE building_id = %s AND is_active",
        (building,),
    )
    return [_Rule(*row) for row in rows]


def _sample_check(stack: BenchStack, building: str, rules: list[_Rule]) -> dict[str, Any]:
    """Stored prices of random blocks against ``app.domain.pricing`` (the function bookings use)."""
    from app.domain.pricing import applicable_rule, multiplier_of, quote

    rows = stack.sql(
        "SELECT id::text, start_at, base_price_clp, price_clp FROM availability_blocks"
        " WHERE building_id = %s AND status = 'available' AND start_at > now() ORDER BY random() LIMIT %s",
        (building, SAMPLE),
    )
    mismatches = []
    repriced = 0
    for block_id, start_at, base, stored in rows:
        multiplier = multiplier_of(applicable_rule(rules, start_at))
        expected = quote(base, multiplier, Decimal(0)).price_clp
        repriced += expected != base
        if stored != expected:
            mismatches.append({"block": block_id, "stored": stored, "expected": expected})
    return {
        "sampled": len(rows),
        "repriced_by_a_rule": repriced,
        "mismatches": len(mismatches),
        "first": mismatches[:3],
    }
