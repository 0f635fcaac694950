"""``accept``: how fast the API takes booking requests, against the cheapest request it answers.

Figure: ``POST /v1/bookings`` answered 202 per second, and their p99 latency, at 64 concurrent
keep-alive connections (``--quick``: 16), closed loop: 3,000 requests (``--quick`` 300), each for a
distinct available block, spread round-robin over 50 logged-in verified residents (``--quick``
10). What one accepted request costs: the session check in Redis, the rate limiter, body
validation, the job row, its audit row, the encrypted payload, the commit and the Celery publish.

Baseline, same server, same client, same connections, same number of requests: ``GET /healthz``
per second. Targets (issue 15): ratio >= 0.5, and p99 <= 50 ms **open loop at 80 % of the
closed-loop max**: 1,000 more POSTs (``--quick`` 60) sent at 0.8 x the measured rate, latency
counted from when each was due (``bench.client.paced``).

The closed loop's own p99 is reported beside it but is not the target's measure: in a closed loop
the mean latency is connections / throughput (Little's law), so at 64 connections a p99 under
50 ms would need more than 1,280 accepted/s, about what ``/healthz`` itself does here.

Both phases run with the API alone (the Celery worker stopped), so they share the machine with
nothing but the client and the servers: the figure is the API's, not the API's minus whatever the
worker took. Afterwards the worker is started and drains every accepted job; that is not timed
(``details.drain``) but checked: every job must end ``succeeded`` with one live booking per block.

Checks: every POST was accepted (202) and every healthz answered 200; every accepted job is
terminal after the drain, succeeded, exactly once; each block holds exactly one live booking; no
request was throttled.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench.checks import booking_body, jobs_summary, live_bookings
from bench.client import Api, closed_loop, paced
from bench.cpu import CpuSampler, two_phase_cpu
from bench.report import Figure, ScenarioResult, Target
from bench.scenarios import ScenarioContext
from bench.stack import BenchError, say
from bench.tenant import Tenant, add_blocks, add_spots, block_ids, login_residents, seed_tenant

NAME = "accept"
ORDER = 4  # where it runs in a full run (the order)
DESCRIPTION = "POST /v1/bookings accepted/s and p99 at 64 connections vs GET /healthz req/s"
TARGET = 0.5  # issue 15 (issues 1-9 set 0.3)
P99_TARGET_MS = 50.0
REQUESTS = {"full": 3000, "quick": 300}
WARMUP = {"full": 200, "quick": 30}
#: The p99 target's measure (issue 15): POSTs sent open loop at 80 % of the closed-loop rate.
PACED = {"full": 1000, "quick": 60}
PACED_LOAD = 0.8
RESIDENTS = {"full": 50, "quick": 10}
CLIENTS = {"full": 64, "quick": 16}
BLOCKS_PER_SPOT = 56
DRAIN_TIMEOUT_S = {"full": 900.0, "quick": 120.0}


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    total = ctx.size(REQUESTS["full"], REQUESTS["quick"])
    warmup = ctx.warmup(WARMUP["full"], WARMUP["quick"])
    clients = ctx.clients(CLIENTS["full"], CLIENTS["quick"])

    tenant = seed_tenant(
        stack, "accept", residents=ctx.warmup(RESIDENTS["full"], RESIDENTS["quick"]), max_upcoming=1_000_000
    )
    spots = add_spots(
        stack, tenant.building, math.ceil((total + warmup + PACED["quick" if ctx.quick else "full"]) / BLOCKS_PER_SPOT)
    )
    add_blocks(stack, tenant.building, BLOCKS_PER_SPOT)
    paced_total = PACED["quick" if ctx.quick else "full"]
    blocks = block_ids(stack, tenant.building)[: total + warmup + paced_total]
    measured_blocks, warmup_blocks = blocks[:total], blocks[total : total + warmup]
    paced_blocks = blocks[total + warmup :]
    say(f"accept: seeded {len(tenant.residents)} residents, {spots} spots, {len(blocks)} blocks in use")

    with stack.running("api"):
        api = Api(stack.api_url or "")
        try:
            login_residents(api, tenant)
            closed_loop(warmup, clients, lambda i: api.request("GET", "/healthz", expect=200))
            warm = closed_loop(len(warmup_blocks), clients, _poster(api, ctx, tenant, warmup_blocks, "warmup"))

            say(f"accept: baseline, {total} GET /healthz ({clients} connections)")
            sampler = CpuSampler(stack.process_groups())
            baseline = closed_loop(total, clients, lambda i: api.request("GET", "/healthz", expect=200).status_code)
            baseline_cpu = sampler.cores()
            say(f"accept: baseline {baseline.per_second:.1f} req/s")

            say(f"accept: figure, {total} POST /v1/bookings ({clients} connections, worker stopped)")
            sessions_before = stack.pg_sessions()
            sampler = CpuSampler(stack.process_groups())
            with ctx.profiled(NAME):
                figure = closed_loop(total, clients, _poster(api, ctx, tenant, measured_blocks, "measured"))
            figure_cpu = sampler.cores()
            sessions_after = stack.pg_sessions()
            say(f"accept: figure {figure.per_second:.1f} accepted/s, p99 {figure.percentile_ms(99)} ms")
            rate = max(1.0, PACED_LOAD * figure.per_second)
            say(f"accept: {len(paced_blocks)} more POSTs open loop at {rate:.0f}/s ({PACED_LOAD:.0%} of the rate)")
            half = paced(len(paced_blocks), clients, rate, _poster(api, ctx, tenant, paced_blocks, "paced"))
        finally:
            api.close()

    accepted = [str(a["job_id"]) for a in [*warm.results, *figure.results, *half.results] if a is not None]
    drain = _drain(ctx, accepted)
    checks, sql = _check(ctx, measured_blocks, warm.results, figure.results, accepted, baseline.results, total)
    checks["paced_all_accepted"] = not half.errors and half.completed == len(paced_blocks)
    checks["all_accepted"] = not figure.errors and figure.completed == total
    checks["not_throttled"] = api.retried == 0
    figure_result = Figure.of("POST /v1/bookings accepted (202)/s, distinct blocks, closed loop", "req/s", figure)
    # The bench's own first reading is one of the sessions counted; the rest are the stack's.
    opened = None if sessions_before is None or sessions_after is None else max(0, sessions_after - sessions_before - 1)
    cpu_details, cpu_notes = two_phase_cpu(figure, baseline, figure_cpu, baseline_cpu, opened)
    return ScenarioResult(
        scenario=NAME,
        figure=figure_result,
        baseline=Figure.of("GET /healthz/s, same server, client and connections", "req/s", baseline),
        target=TARGET,
        extra_targets=[
            Target(f"open-loop p99 at {PACED_LOAD:.0%} load", half.percentile_ms(99), "ms", "<=", P99_TARGET_MS)
        ],
        checks=checks,
        details={
            "requests": total,
            "warmup_requests": warmup,
            "residents": len(tenant.residents),
            "spots": spots,
            "concurrency": clients,
            "worker_during_measurement": "stopped (jobs drained afterwards)",
            "idempotency_keys": ctx.idempotency_keys,
            "http_retries_after_429_503": api.retried,
            "figure_errors": figure.errors[:5],
            "baseline_errors": baseline.errors[:5],
            "paced_open_loop": {
                "load": PACED_LOAD,
                "offered_per_second": round(rate, 1),
                "requests": len(paced_blocks),
                "completed": half.completed,
                "latency_ms": half.latency_summary(),
                "errors": half.errors[:5],
            },
            "drain": drain,
            "sql": sql,
            **cpu_details,
        },
        notes=[
            *cpu_notes,
            f"open loop at {PACED_LOAD:.0%} of that rate ({rate:.0f}/s): p50 {half.percentile_ms(50)} ms, "
            f"p99 {half.percentile_ms(99)} ms (the p99 target's measure; the closed loop's p99 is in the table)",
            f"drained {drain['jobs']} accepted jobs afterwards in {drain['seconds']:.1f} s (not timed as the figure)",
        ],
    )


def _poster(api: Api, ctx: ScenarioContext, tenant: Tenant, blocks: list[str], phase: str) -> Any:
    def post(index: int) -> dict[str, Any]:
        headers = (
            {"Idempotency-Key": f"bench-{ctx.stack.run_id}-accept-{phase}-{index}"} if ctx.idempotency_keys else None
        )
        token = tenant.tokens[index % len(tenant.tokens)]
        return api.submit("/v1/bookings", booking_body(blocks[index], index), headers=headers, token=token)

    return post


def _drain(ctx: ScenarioContext, job_ids: list[str]) -> dict[str, Any]:
    """Start the worker and wait until every accepted job is terminal (so the next scenario starts clean)."""
    stack = ctx.stack
    timeout = DRAIN_TIMEOUT_S["quick" if ctx.quick else "full"]
    say(f"accept: draining {len(job_ids)} accepted jobs with the worker")
    began = time.perf_counter()
    with stack.running("app_worker"):
        while True:
            ((pending,),) = stack.sql(
                "SELECT count(*) FROM jobs WHERE id = ANY(%s::uuid[]) AND status NOT IN ('succeeded', 'failed')",
                (job_ids,),
            )
            if pending == 0:
                break
            if time.perf_counter() - began > timeout:
                raise BenchError(f"{pending} accepted booking jobs still unfinished after {timeout:.0f}s")
            time.sleep(0.25)
    seconds = time.perf_counter() - began
    return {"jobs": len(job_ids), "seconds": round(seconds, 2), "jobs_per_second": round(len(job_ids) / seconds, 1)}


def _check(
    ctx: ScenarioContext,
    blocks: list[str],
    warm: list[Any],
    measured: list[Any],
    accepted: list[str],
    healthz: list[Any],
    total: int,
) -> tuple[dict[str, bool], dict[str, Any]]:
    jobs = jobs_summary(ctx.stack, accepted)
    live = live_bookings(ctx.stack, blocks)
    sql = {"jobs": jobs, "live_bookings": live}
    checks = {
        "healthz_all_200": len([c for c in healthz if c == 200]) == total,
        "drained_all_succeeded": jobs["found"] == len(accepted) and jobs["succeeded"] == len(accepted),
        "exactly_once": jobs["attempts_eq_1"] == len(accepted),
        "one_live_booking_per_block": live["blocks_with_one_live_booking"] == total
        and live["blocks_reserved"] == total,
        "warmup_accepted": all(a is not None for a in warm),
    }
    return checks, sql
