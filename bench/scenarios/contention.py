"""``contention``: a crowd presses "book" on ONE block; how long until every one of them has an answer.

Figure: the time from the first of 500 ``POST /v1/bookings`` for the same block (``--quick`` 50)
until every one of the 500 jobs has been seen terminal. A burst (``bench.client.burst``): 64 client
threads (``--quick`` 16) submit all of them as fast as the API accepts them, spread round-robin over
50 verified residents (``--quick`` 10), then await them all with ``GET /v1/jobs/{id}?wait=``. Exactly
one may win; the others must end ``spot-unavailable``.

Baseline, measured in the same run on the same API and worker, by the same threads and the same
residents: 500 ``system.ping`` jobs (``sleep_ms`` 0) submitted and awaited the same way. The
ratio is figure / baseline (a time: lower is better). A warm-up burst of each (on a block of its
own for the bookings) runs first.

Checks (SQL, not only the API's answers): exactly one job succeeded and every other one failed with
``spot-unavailable``; the block holds exactly one live booking and is ``reserved``; every job ran
exactly once (``attempts = 1``); the warm-up block also had exactly one winner; every ping
succeeded; nothing was throttled.
"""

from __future__ import annotations

from typing import Any

from bench.checks import SPOT_UNAVAILABLE, booking_body, error_type, jobs_summary, live_bookings
from bench.client import Api, Measurement, burst
from bench.cpu import CpuSampler, two_phase_cpu
from bench.report import Figure, ScenarioResult
from bench.scenarios import ScenarioContext
from bench.stack import say
from bench.tenant import Tenant, add_blocks, add_spots, block_ids, login_residents, seed_tenant

NAME = "contention"
ORDER = 3  # where it runs in a full run (the order)
DESCRIPTION = "time until all of 500 concurrent bookings of ONE block are terminal vs 500 system.ping jobs"
TARGET = 1.0  # issue 15 (issues 1-9 set 1.5)
SUBMISSIONS = {"full": 500, "quick": 50}
WARMUP = {"full": 50, "quick": 10}
RESIDENTS = {"full": 50, "quick": 10}
CLIENTS = {"full": 64, "quick": 16}
JOB_TIMEOUT_S = 120.0


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    total = ctx.size(SUBMISSIONS["full"], SUBMISSIONS["quick"])
    warmup = ctx.warmup(WARMUP["full"], WARMUP["quick"])
    clients = ctx.clients(CLIENTS["full"], CLIENTS["quick"])

    tenant = seed_tenant(
        stack, "contention", residents=ctx.warmup(RESIDENTS["full"], RESIDENTS["quick"]), max_upcoming=1_000
    )
    add_spots(stack, tenant.building, 1)
    add_blocks(stack, tenant.building, 2, first_day=2)
    warm_block, block = block_ids(stack, tenant.building)
    say(f"contention: seeded {len(tenant.residents)} residents, one spot, the block {block}")

    with stack.running("api", "app_worker"):
        api = Api(stack.api_url or "")
        try:
            login_residents(api, tenant)
            say(f"contention: warm-up, {warmup} pings and {warmup} bookings of one block")
            burst(warmup, clients, _submitter(api, ctx, tenant, None, "warmup-ping"), _waiter(api, tenant))
            warm = burst(warmup, clients, _submitter(api, ctx, tenant, warm_block, "warmup"), _waiter(api, tenant))

            say(f"contention: baseline, {total} system.ping jobs in a burst ({clients} client threads)")
            sampler = CpuSampler(stack.process_groups())
            baseline = burst(total, clients, _submitter(api, ctx, tenant, None, "ping"), _waiter(api, tenant))
            baseline_cpu = sampler.cores()
            say(f"contention: baseline {baseline.elapsed_s:.2f} s")

            say(f"contention: figure, {total} bookings of ONE block in a burst ({clients} client threads)")
            sessions_before = stack.pg_sessions()
            sampler = CpuSampler(stack.process_groups())
            with ctx.profiled(NAME):
                figure = burst(total, clients, _submitter(api, ctx, tenant, block, "book"), _waiter(api, tenant))
            figure_cpu = sampler.cores()
            sessions_after = stack.pg_sessions()
            say(f"contention: figure {figure.elapsed_s:.2f} s")
        finally:
            api.close()

    checks, sql = _check(ctx, block, warm_block, warm, figure, baseline)
    checks["not_throttled"] = api.retried == 0
    # The bench's own first reading is one of the sessions counted; the rest are the stack's.
    opened = None if sessions_before is None or sessions_after is None else max(0, sessions_after - sessions_before - 1)
    cpu_details, cpu_notes = two_phase_cpu(figure, baseline, figure_cpu, baseline_cpu, opened)
    return ScenarioResult(
        scenario=NAME,
        figure=Figure.duration(
            f"time until all {total} concurrent bookings of ONE block are terminal (burst submit, then long-poll)",
            figure.elapsed_s,
            operations=figure.completed,
            concurrency=clients,
            latencies_s=figure.latencies_s,
            errors=figure.errors,
        ),
        baseline=Figure.duration(
            f"time until {total} system.ping jobs submitted and awaited the same way are terminal",
            baseline.elapsed_s,
            operations=baseline.completed,
            concurrency=clients,
            latencies_s=baseline.latencies_s,
            errors=baseline.errors,
        ),
        target=TARGET,
        higher_is_better=False,
        checks=checks,
        details={
            "submissions": total,
            "warmup": warmup,
            "residents": len(tenant.residents),
            "concurrency": clients,
            "idempotency_keys": ctx.idempotency_keys,
            "http_retries_after_429_503": api.retried,
            "figure_errors": figure.errors[:5],
            "baseline_errors": baseline.errors[:5],
            "sql": sql,
            **cpu_details,
        },
        notes=[
            *cpu_notes,
        ],
    )


def _submitter(api: Api, ctx: ScenarioContext, tenant: Tenant, block: str | None, phase: str) -> Any:
    """Submit booking ``index`` of ``block`` (or a ping when ``block`` is None) as resident ``index % n``."""

    def submit(index: int) -> tuple[str, str]:
        headers = {"Idempotency-Key": f"bench-{ctx.stack.run_id}-{phase}-{index}"} if ctx.idempotency_keys else None
        token = tenant.tokens[index % len(tenant.tokens)]
        if block is None:
            accepted = api.submit("/v1/system/ping", {"sleep_ms": 0}, headers=headers, token=token)
        else:
            accepted = api.submit("/v1/bookings", booking_body(block, index), headers=headers, token=token)
        return accepted["status_url"], token

    return submit


def _waiter(api: Api, tenant: Tenant) -> Any:
    def wait(index: int, submitted: tuple[str, str]) -> dict[str, Any]:
        status_url, token = submitted
        return api.await_job(status_url, token=token, timeout=JOB_TIMEOUT_S)

    return wait


def _outcomes(run: Measurement) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    documents = [d for d in run.results if d is not None]
    won = [d for d in documents if d["status"] == "succeeded"]
    lost = [d for d in documents if d["status"] == "failed"]
    return documents, won, lost


def _check(
    ctx: ScenarioContext,
    block: str,
    warm_block: str,
    warm: Measurement,
    figure: Measurement,
    baseline: Measurement,
) -> tuple[dict[str, bool], dict[str, Any]]:
    total = figure.total
    documents, won, lost = _outcomes(figure)
    jobs = jobs_summary(ctx.stack, [d["id"] for d in documents])
    live = live_bookings(ctx.stack, [block])
    warm_live = live_bookings(ctx.stack, [warm_block])
    _, warm_won, _ = _outcomes(warm)
    pings = [d for d in baseline.results if d is not None]
    ping_jobs = jobs_summary(ctx.stack, [d["id"] for d in pings])
    loser_types = sorted({str(error_type(d)) for d in lost})
    sql = {"jobs": jobs, "live_bookings": live, "warmup_live_bookings": warm_live, "ping_jobs": ping_jobs}
    sql["loser_error_types"] = loser_types
    winner = (won[0].get("result") or {}).get("booking") or {} if len(won) == 1 else {}
    checks = {
        "all_terminal": not figure.errors and len(documents) == total and jobs["found"] == total,
        "exactly_one_winner": len(won) == 1
        and jobs["succeeded"] == 1
        and winner.get("status") == "confirmed"
        and winner.get("availability_block_id") == block,
        "losers_spot_unavailable": len(lost) == total - 1
        and jobs["failed"] == total - 1
        and loser_types == ([SPOT_UNAVAILABLE] if total > 1 else []),
        "one_live_booking_sql": live["blocks_with_one_live_booking"] == 1 and live["blocks_reserved"] == 1,
        "exactly_once": jobs["attempts_eq_1"] == total,
        "warmup_one_winner": len(warm_won) == 1 and warm_live["blocks_with_one_live_booking"] == 1,
        "baseline_all_succeeded": not baseline.errors
        and len(pings) == total
        and all(d["status"] == "succeeded" for d in pings)
        and ping_jobs["succeeded"] == total
        and ping_jobs["attempts_eq_1"] == total,
    }
    return checks, sql
