"""``bookings``: how much of the raw queue's throughput a real booking keeps.

Figure: confirmed bookings per second, each a ``POST /v1/bookings`` for a distinct available block
(2,000; ``--quick`` 40) awaited to its terminal state with ``GET /v1/jobs/{id}?wait=``, spread
round-robin over 50 logged-in verified residents (``--quick`` 10) of one building whose limit of
upcoming bookings is lifted; p50/p99 latency is submit -> terminal. The whole booking path runs:
login session and rate limiter, validation, the job row and its audit, the Celery message, the
worker's claim, the resident lock, every rule, the blocklist, pricing, the block's CAS, the
encrypted booking, its audit row and the terminal state.

Baseline, measured in the same run: raw Celery no-op round trips per second, exactly as the
``queue`` scenario measures them (``celery_noop.measure``), with the same client threads.

Data (``bench/tenant.py``): an organization, a building, 56 blocks per spot (two a day, days 1-28:
inside the 30-day booking horizon) on as many spots as the run needs, inserted set-based.

Checks: every measured booking job succeeded with a ``confirmed`` booking of its own block, each
ran exactly once (``attempts = 1``), every block holds exactly one live booking and is
``reserved``, booking ids and confirmation codes are all distinct, the building holds no booking
beyond the ones submitted, every no-op replied, and nothing was throttled.
"""

from __future__ import annotations

import math
from typing import Any

from bench import celery_noop
from bench.checks import booking_body, jobs_summary, live_bookings
from bench.client import Api, Measurement, closed_loop
from bench.cpu import CpuSampler, two_phase_cpu
from bench.report import Figure, ScenarioResult
from bench.scenarios import ScenarioContext
from bench.stack import say
from bench.tenant import Tenant, add_blocks, add_spots, block_ids, login_residents, seed_tenant

NAME = "bookings"
ORDER = 2  # where it runs in a full run (the order)
DESCRIPTION = "confirmed bookings/s on distinct blocks (submit + long-poll) vs raw Celery no-op round trips/s"
TARGET = 0.5
BOOKINGS = {"full": 2000, "quick": 40}
WARMUP = {"full": 100, "quick": 10}
RESIDENTS = {"full": 50, "quick": 10}
CLIENTS = 16
BLOCKS_PER_SPOT = 56
JOB_TIMEOUT_S = 60.0


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    total = ctx.size(BOOKINGS["full"], BOOKINGS["quick"])
    warmup = ctx.warmup(WARMUP["full"], WARMUP["quick"])
    clients = ctx.clients(CLIENTS)

    say(f"bookings: baseline, {total} raw Celery no-op round trips ({clients} client threads)")
    baseline, baseline_cpu = celery_noop.measure(stack, total, clients, warmup)
    say(f"bookings: baseline {baseline.per_second:.1f} round trips/s")

    tenant = seed_tenant(
        stack, "bookings", residents=ctx.warmup(RESIDENTS["full"], RESIDENTS["quick"]), max_upcoming=1_000_000
    )
    spots = add_spots(stack, tenant.building, math.ceil((total + warmup) / BLOCKS_PER_SPOT))
    add_blocks(stack, tenant.building, BLOCKS_PER_SPOT)
    blocks = block_ids(stack, tenant.building)[: total + warmup]
    measured_blocks, warmup_blocks = blocks[:total], blocks[total:]
    say(f"bookings: seeded {len(tenant.residents)} residents, {spots} spots, {len(blocks)} blocks in use")

    say(f"bookings: figure, {total} bookings over HTTP ({clients} client threads)")
    with stack.running("api", "app_worker"):
        api = Api(stack.api_url or "")
        try:
            login_residents(api, tenant)
            warm = closed_loop(len(warmup_blocks), clients, _booker(api, ctx, tenant, warmup_blocks, "warmup"))
            sessions_before = stack.pg_sessions()
            sampler = CpuSampler(stack.process_groups())
            polls_before = api.polls
            with ctx.profiled(NAME):
                figure = closed_loop(total, clients, _booker(api, ctx, tenant, measured_blocks, "measured"))
            figure_cpu = sampler.cores()
            polls = api.polls - polls_before
            sessions_after = stack.pg_sessions()
        finally:
            api.close()
    say(f"bookings: figure {figure.per_second:.1f} bookings/s")

    checks, sql = _check(ctx, tenant, measured_blocks, warm, figure, baseline)
    checks["not_throttled"] = api.retried == 0
    # The bench's own first reading is one of the sessions counted; the rest are the stack's.
    opened = None if sessions_before is None or sessions_after is None else max(0, sessions_after - sessions_before - 1)
    cpu_details, cpu_notes = two_phase_cpu(figure, baseline, figure_cpu, baseline_cpu, opened)
    return ScenarioResult(
        scenario=NAME,
        figure=Figure.of(
            "confirmed bookings/s, distinct blocks, HTTP submit + long-poll to terminal", "bookings/s", figure
        ),
        baseline=Figure.of("raw Celery no-op round trips/s, same broker and worker topology", "tasks/s", baseline),
        target=TARGET,
        checks=checks,
        details={
            "bookings": total,
            "warmup_bookings": len(warmup_blocks),
            "residents": len(tenant.residents),
            "spots": spots,
            "concurrency": clients,
            "idempotency_keys": ctx.idempotency_keys,
            "http_retries_after_429_503": api.retried,
            "polls_per_booking": round(polls / max(total, 1), 2),
            "warmup_errors": warm.errors[:5],
            "figure_errors": len(figure.errors),
            "baseline_errors": len(baseline.errors),
            "sql": sql,
            **cpu_details,
        },
        notes=[
            f"GET ?wait= polls per booking: {polls / max(total, 1):.2f} (above 1: capped long-polls answered at once)",
            *cpu_notes,
        ],
    )


def _booker(api: Api, ctx: ScenarioContext, tenant: Tenant, blocks: list[str], phase: str) -> Any:
    def book(index: int) -> dict[str, Any]:
        headers = (
            {"Idempotency-Key": f"bench-{ctx.stack.run_id}-book-{phase}-{index}"} if ctx.idempotency_keys else None
        )
        token = tenant.tokens[index % len(tenant.tokens)]
        body = booking_body(blocks[index], index)
        return api.submit_and_await("/v1/bookings", body, headers=headers, token=token, timeout=JOB_TIMEOUT_S)

    return book


def _check(
    ctx: ScenarioContext,
    tenant: Tenant,
    blocks: list[str],
    warm: Measurement,
    figure: Measurement,
    baseline: Measurement,
) -> tuple[dict[str, bool], dict[str, Any]]:
    total = len(blocks)
    documents = [d for d in figure.results if d is not None]
    jobs = jobs_summary(ctx.stack, [d["id"] for d in documents])
    live = live_bookings(ctx.stack, blocks)
    made = [(d.get("result") or {}).get("booking") or {} for d in documents]
    ((in_building,),) = ctx.stack.sql("SELECT count(*) FROM bookings WHERE building_id = %s", (tenant.building,))
    warm_confirmed = sum(1 for d in warm.results if d is not None and d["status"] == "succeeded")
    sql = {"jobs": jobs, "live_bookings": live, "bookings_in_building": int(in_building)}
    confirmed_own_block = all(
        d["status"] == "succeeded"
        and booking.get("status") == "confirmed"
        and booking.get("availability_block_id") == blocks[index]
        for index, (d, booking) in enumerate(zip(figure.results, made, strict=True))
        if d is not None
    )
    checks = {
        "all_jobs_completed": not figure.errors and len(documents) == total,
        "every_booking_confirmed": confirmed_own_block and jobs["succeeded"] == total,
        "exactly_once": jobs["found"] == total and jobs["attempts_eq_1"] == total,
        "one_live_booking_per_block": live["blocks_with_one_live_booking"] == total
        and live["blocks_reserved"] == total,
        "distinct_bookings": len({b.get("id") for b in made}) == total
        and len({b.get("confirmation_code") for b in made}) == total,
        "no_extra_bookings": int(in_building) == total + warm_confirmed,
        "baseline_all_replied": not baseline.errors and baseline.completed == total,
    }
    return checks, sql
