"""``queue``: how much of the raw queue's throughput the job pipeline keeps.

Figure: ``system.ping`` jobs (``sleep_ms`` 0) per second, each submitted with
``POST /v1/system/ping`` and awaited to its terminal state with ``GET /v1/jobs/{id}?wait=``,
through gunicorn, Postgres, Redis and the Procfile's Celery worker.

Baseline, measured in the same run on the same broker with the same worker topology: raw Celery
no-op round trips per second (``bench/celery_noop.py``; no HTTP, no database).

Both phases use the same closed-loop client (``--concurrency`` threads, one operation in flight
each) after a short warm-up; the baseline's worker is stopped before the API and the app's worker
start, so the phases never share the CPU.

Checks: every measured job ended ``succeeded``, each ran exactly once (``attempts = 1`` in SQL), and
the counts match (client, SQL, and no job beyond the ones submitted); every no-op replied; no
request was throttled (429/503), or the figure would be the limiter's.
"""

from __future__ import annotations

from typing import Any

from bench import celery_noop
from bench.client import Api, Measurement, closed_loop
from bench.cpu import CpuSampler, per_operation_ms, phase_notes
from bench.report import Figure, ScenarioResult
from bench.scenarios import ScenarioContext
from bench.stack import say

NAME = "queue"
ORDER = 1  # where it runs in a full run (the order)
DESCRIPTION = "system.ping jobs/s over HTTP (submit + long-poll) vs raw Celery no-op round trips/s"
TARGET = 0.7
JOBS = {"full": 2000, "quick": 50}
WARMUP = {"full": 100, "quick": 10}
JOB_TIMEOUT_S = 60.0


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    total = ctx.size(JOBS["full"], JOBS["quick"])
    warmup = ctx.warmup(WARMUP["full"], WARMUP["quick"])

    say(f"queue: baseline, {total} raw Celery no-op round trips ({ctx.concurrency} client threads)")
    baseline, baseline_cpu = celery_noop.measure(stack, total, ctx.concurrency, warmup)
    say(f"queue: baseline {baseline.per_second:.1f} round trips/s")

    user = stack.create_user()
    say(f"queue: figure, {total} system.ping jobs over HTTP ({ctx.concurrency} client threads)")
    with stack.running("api", "app_worker"):
        api = Api(stack.api_url or "")
        try:
            api.login(user["email"], user["password"])
            warm = closed_loop(warmup, ctx.concurrency, _pinger(api, ctx, "warmup"))
            sampler = CpuSampler(stack.process_groups())
            with ctx.profiled(NAME):
                figure = closed_loop(total, ctx.concurrency, _pinger(api, ctx, "measured"))
            figure_cpu = sampler.cores()
        finally:
            api.close()
    say(f"queue: figure {figure.per_second:.1f} jobs/s")

    checks, sql = _check(ctx, user["id"], total, warm, figure, baseline)
    # A throttled run measured the rate limiter, not the pipeline: its figure means nothing.
    checks["not_throttled"] = api.retried == 0
    return ScenarioResult(
        scenario=NAME,
        figure=Figure.of("system.ping jobs/s, HTTP submit + long-poll to terminal", "jobs/s", figure),
        baseline=Figure.of("raw Celery no-op round trips/s, same broker and worker topology", "tasks/s", baseline),
        target=TARGET,
        checks=checks,
        details={
            "jobs": total,
            "warmup_jobs": warmup,
            "concurrency": ctx.concurrency,
            "idempotency_keys": ctx.idempotency_keys,
            "http_retries_after_429_503": api.retried,
            "warmup_errors": warm.errors[:5],
            "figure_errors": len(figure.errors),
            "baseline_errors": len(baseline.errors),
            "sql": sql,
            "cpu_cores_used": {"figure": figure_cpu, "baseline": baseline_cpu},
            "cpu_ms_per_operation": {
                "figure": per_operation_ms(figure_cpu, figure.elapsed_s, figure.completed),
                "baseline": per_operation_ms(baseline_cpu, baseline.elapsed_s, baseline.completed),
            },
        },
        notes=[
            *phase_notes("figure", figure_cpu, figure.elapsed_s, figure.completed),
            *phase_notes("baseline", baseline_cpu, baseline.elapsed_s, baseline.completed),
        ],
    )


def _pinger(api: Api, ctx: ScenarioContext, phase: str) -> Any:
    def ping(index: int) -> dict[str, Any]:
        headers = {"Idempotency-Key": f"bench-{ctx.stack.run_id}-{phase}-{index}"} if ctx.idempotency_keys else None
        return api.submit_and_await("/v1/system/ping", {"sleep_ms": 0}, headers=headers, timeout=JOB_TIMEOUT_S)

    return ping


def _check(
    ctx: ScenarioContext, user_id: str, total: int, warm: Measurement, figure: Measurement, baseline: Measurement
) -> tuple[dict[str, bool], dict[str, int]]:
    documents = [d for d in figure.results if d is not None]
    ids = [d["id"] for d in documents]
    rows = ctx.stack.sql(
        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE attempts = 1)"
        " FROM jobs WHERE id = ANY(%s::uuid[])",
        (ids,),
    )
    found, succeeded, once = rows[0]
    (owned,) = ctx.stack.sql("SELECT count(*) FROM jobs WHERE owner_user_id = %s AND type = 'system.ping'", (user_id,))[
        0
    ]
    sql = {"jobs_found": found, "succeeded": succeeded, "attempts_eq_1": once, "user_ping_jobs": owned}
    checks = {
        "all_jobs_completed": not figure.errors and len(documents) == total,
        "all_succeeded": all(d["status"] == "succeeded" and d["result"] == {"pong": True} for d in documents)
        and succeeded == total,
        "exactly_once": once == total and all(d["attempts"] == 1 for d in documents),
        "count_matches": len(set(ids)) == total and found == total and owned == total + warm.completed,
        "baseline_all_replied": not baseline.errors and baseline.completed == total,
    }
    return checks, sql
