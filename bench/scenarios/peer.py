"""``peer``: our booking path beside a tutorial-style Flask + Celery booking API, under the same load.

The peer (``../shared/peer``, or ``BENCH_PEER_DIR``; see ``bench/peer_stack.py``) is what a typical
Flask + Celery developer builds: a stateless JWT, ``book.delay()``, ``AsyncResult.get(timeout=)``
and one ``SELECT ... FOR UPDATE`` transaction, without any of our guarantees. When it is absent the
scenario reports ``skipped: peer app not found at PATH`` and fails nothing.

Figure: our confirmed bookings/s, exactly the ``bookings`` scenario's figure of this run (taken from
it when it ran before this scenario, else measured here by running it). Baseline: the peer's
confirmed bookings/s, measured with the ``bookings`` scenario's load (the same number of bookings
and warm-up bookings, the same client threads, closed loop, submit then long-poll to terminal, each
on a distinct block, round-robin over as many residents), the same client code (``bench.client``
with a small adapter, ``bench.peer_client``), the same CPU accounting (``bench.cpu``, per process
group), the same API and worker command lines (our Procfile's) and the same servers. Seeded
equivalently: as many blocks as ``bookings`` inserts (the peer has no spots or users; its residents
are the ids in their JWTs, one per resident of ours). Ratio = ours / peer.

The floors, measured in the same run: the raw Celery no-op round trip (``bench.celery_noop``, the
``bookings`` scenario's baseline) and ``GET /healthz`` on our API (same client threads; the peer's
``/healthz`` is measured too, for reference). A booking is at least two requests and one task, so
the floors' sum is one round trip plus two ``/healthz``, in CPU-ms; the notes give both apps'
CPU-ms per booking as a multiple of it.

CPU-ms compared (targets, floors) are those of **all processes**: the sum of the process groups
``bench.cpu`` accounts (API, worker, PostgreSQL, Redis, the client). The machine's busy time is
shown beside it but not compared: on a shared machine it also counts everybody else's work.

Targets (issue 15): bookings/s >= 1.0 x the peer's; all-process CPU-ms per booking <= 1.0 x the
peer's; p99 submit -> terminal <= the peer's. Reported, never asserted.

Checks: ours passed the ``bookings`` checks; every peer task ended ``SUCCESS`` with a ``confirmed``
booking of its own block; every block holds exactly one live booking and is ``reserved`` (read from
the peer's database); booking ids and codes are distinct; the peer's database holds no booking
beyond the submitted ones; every ``/healthz`` answered 200; nothing was throttled.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import uuid
from typing import Any

from bench.client import Api, Measurement, closed_loop
from bench.cpu import CpuSampler, per_operation_ms
from bench.peer_client import PeerApi, booking, token
from bench.peer_stack import PeerStack, is_peer_app, peer_dir
from bench.report import Figure, ScenarioResult, Target
from bench.scenarios import ScenarioContext, bookings
from bench.stack import say

NAME = "peer"
ORDER = 2.5  # right after bookings, whose figure it reuses: the two are measured minutes apart at most
DESCRIPTION = "our bookings/s, p50/p99 and CPU-ms per booking beside the tutorial-style peer app's, same load"
TARGET = 1.0
#: The peer's blocks cost what ``bench.tenant.add_blocks`` prices ours at (its default base price).
BLOCK_PRICE = 5000
#: Process groups compared per booking, in this order (then their sum, then the machine's total).
GROUPS = ("api", "worker", "postgres", "redis", "client (this process)")
#: The sum of the groups above (``bench.cpu`` accounts them by process group): what the targets and
#: the floors compare, because it holds on a shared machine. The machine's busy time also counts
#: whatever else runs there (other users' tests), so it is shown but not compared.
ACCOUNTED = "all processes (sum of the groups)"
MACHINE = "total (machine)"


def run(ctx: ScenarioContext) -> ScenarioResult:
    directory = peer_dir()
    if not is_peer_app(directory):
        reason = f"peer app not found at {directory}"
        say(f"peer: skipped: {reason}")
        return ScenarioResult.skip(NAME, reason)

    ours, ours_source = _ours(ctx)
    began = time.perf_counter()  # what this scenario adds to a run, beyond the bookings one
    total = ctx.size(bookings.BOOKINGS["full"], bookings.BOOKINGS["quick"])
    warmup = ctx.warmup(bookings.WARMUP["full"], bookings.WARMUP["quick"])
    residents = ctx.warmup(bookings.RESIDENTS["full"], bookings.RESIDENTS["quick"])
    clients = ctx.clients(bookings.CLIENTS)
    block_count = math.ceil((total + warmup) / bookings.BLOCKS_PER_SPOT) * bookings.BLOCKS_PER_SPOT

    peer = PeerStack(ctx.stack, directory)
    try:
        peer.start()
        blocks = peer.seed_blocks(block_count, BLOCK_PRICE)[: total + warmup]
        measured_blocks, warmup_blocks = blocks[:total], blocks[total:]
        people = [str(uuid.uuid4()) for _ in range(residents)]
        tokens = [token(person, peer.jwt_secret) for person in people]
        say(f"peer: seeded {block_count} blocks, {len(people)} residents")
        with peer.running("api"):
            api = PeerApi(peer.api_url or "")
            try:
                peer_healthz, peer_healthz_cpu = _healthz(api, total, clients, warmup, peer.process_groups)
                with peer.running("worker"):
                    say(f"peer: figure, {total} bookings over HTTP ({clients} client threads)")
                    warm = closed_loop(len(warmup_blocks), clients, _booker(api, tokens, warmup_blocks))
                    sampler = CpuSampler(peer.process_groups())
                    with ctx.profiled(NAME):  # --profile: py-spy on the peer's API and worker, as on ours
                        theirs = closed_loop(total, clients, _booker(api, tokens, measured_blocks))
                    theirs_cpu = sampler.cores()
            finally:
                api.close()
        say(f"peer: {theirs.per_second:.1f} bookings/s (ours {ours.figure.value:.1f})")
        checks, sql = _check(peer, measured_blocks, warm, theirs)
    finally:
        peer.close()

    say(f"peer: floor, {total} GET /healthz on our API ({clients} client threads)")
    with ctx.stack.running("api"):
        our_api = Api(ctx.stack.api_url or "")
        try:
            healthz, healthz_cpu = _healthz(our_api, total, clients, warmup, ctx.stack.process_groups)
        finally:
            our_api.close()

    seconds = round(time.perf_counter() - began, 1)
    checks["ours_passed_the_bookings_checks"] = ours.checks_passed
    checks["healthz_all_200"] = _all_answered(healthz, total) and _all_answered(peer_healthz, total)
    checks["not_throttled"] = api.retried == 0 and our_api.retried == 0

    our_cpu = ours.details.get("cpu_ms_per_operation", {})
    our_ms, celery_ms = _accounted(our_cpu.get("figure", {})), _accounted(our_cpu.get("baseline", {}))
    their_ms = _accounted(per_operation_ms(theirs_cpu, theirs.elapsed_s, theirs.completed))
    healthz_ms = _accounted(per_operation_ms(healthz_cpu, healthz.elapsed_s, healthz.completed))
    peer_healthz_ms = _accounted(per_operation_ms(peer_healthz_cpu, peer_healthz.elapsed_s, peer_healthz.completed))
    floors = _floors(celery_ms.get(ACCOUNTED), healthz_ms.get(ACCOUNTED))

    baseline = Figure.of(
        "the peer's confirmed bookings/s, same load, client, topology and servers", "bookings/s", theirs
    )
    figure = dataclasses.replace(ours.figure, name=f"our confirmed bookings/s ({ours_source})")
    cpu_ratio = _ratio(our_ms.get(ACCOUNTED), their_ms.get(ACCOUNTED))
    p99_ratio = _ratio(figure.latency_ms.get("p99"), baseline.latency_ms.get("p99"))
    rows = _comparison(figure, baseline, our_ms, their_ms)
    floor_figures = {
        "celery_round_trip": {"per_second": ours.baseline.value, "cpu_ms": celery_ms},
        "healthz_ours": {"per_second": round(healthz.per_second, 1), "cpu_ms": healthz_ms},
        "healthz_peer": {"per_second": round(peer_healthz.per_second, 1), "cpu_ms": peer_healthz_ms},
        "sum_cpu_ms": floors,
        "ours_over_sum": _ratio(our_ms.get(ACCOUNTED), floors),
        "peer_over_sum": _ratio(their_ms.get(ACCOUNTED), floors),
    }
    return ScenarioResult(
        scenario=NAME,
        figure=figure,
        baseline=baseline,
        target=TARGET,
        extra_targets=[
            Target("CPU-ms/booking ours/peer", cpu_ratio, "", "<=", 1.0),
            Target("p99 ours/peer", p99_ratio, "", "<=", 1.0),
        ],
        checks=checks,
        details={
            "peer_dir": str(directory),
            "peer_database": peer.database_name,
            "peer_redis_url": peer.redis_url,
            "ours_from": ours_source,
            "bookings": total,
            "warmup_bookings": len(warmup_blocks),
            "residents": len(people),
            "blocks": block_count,
            "concurrency": clients,
            "seconds_beyond_bookings": seconds,
            "http_retries_after_429_503": api.retried + our_api.retried,
            "warmup_errors": warm.errors[:5],
            "figure_errors": theirs.errors[:5],
            "comparison": rows,
            "floors": floor_figures,
            "sql": sql,
            "cpu_cores_used": {"peer": theirs_cpu, "healthz_ours": healthz_cpu, "healthz_peer": peer_healthz_cpu},
            "cpu_ms_per_operation": {"ours": our_ms, "peer": their_ms},
        },
        notes=[
            *_comparison_notes(rows),
            *_floor_notes(ours, healthz, peer_healthz, floor_figures),
            f"the peer's phases and the /healthz floor took {seconds:.0f} s (beyond the bookings scenario)",
        ],
    )


def _ours(ctx: ScenarioContext) -> tuple[ScenarioResult, str]:
    """The ``bookings`` scenario's result of this run; measured now when it did not run (or raised)."""
    earlier = ctx.earlier.get(bookings.NAME)
    if earlier is not None and earlier.error is None and earlier.skipped is None:
        return earlier, "the bookings scenario of this run"
    say("peer: the bookings scenario did not run before this one; measuring it now")
    return bookings.run(ctx), "measured by this scenario with the bookings scenario's code"


def _booker(api: PeerApi, tokens: list[str], blocks: list[str]) -> Any:
    def book(index: int) -> dict[str, Any]:
        return api.book_and_await(
            booking(blocks[index], index), token=tokens[index % len(tokens)], timeout=bookings.JOB_TIMEOUT_S
        )

    return book


def _healthz(api: Api, total: int, clients: int, warmup: int, groups: Any) -> tuple[Measurement, dict[str, float]]:
    """``GET /healthz`` as a floor: a warm-up, then ``total`` requests from ``clients`` threads, with their CPU."""
    closed_loop(warmup, clients, lambda i: api.request("GET", "/healthz", expect=200).status_code)
    sampler = CpuSampler(groups())
    measured = closed_loop(total, clients, lambda i: api.request("GET", "/healthz", expect=200).status_code)
    return measured, sampler.cores()


def _all_answered(measurement: Measurement, total: int) -> bool:
    return not measurement.errors and sum(1 for code in measurement.results if code == 200) == total


def _check(
    peer: PeerStack, blocks: list[str], warm: Measurement, measured: Measurement
) -> tuple[dict[str, bool], dict[str, Any]]:
    total = len(blocks)
    documents = [d for d in measured.results if d is not None]
    made = [(d.get("result") or {}) if d is not None else {} for d in measured.results]
    ((one, reserved),) = peer.sql(
        """
        WITH wanted AS (SELECT unnest(%s::uuid[]) AS id),
        live AS (
            SELECT w.id, count(k.id) AS n
            FROM wanted w LEFT JOIN bookings k ON k.block_id = w.id AND k.status <> 'cancelled'
            GROUP BY w.id
        )
        SELECT count(*) FILTER (WHERE n = 1),
               (SELECT count(*) FROM blocks b JOIN wanted w ON w.id = b.id WHERE b.status = 'reserved')
        FROM live
        """,
        (blocks,),
    )
    ((in_database,),) = peer.sql("SELECT count(*) FROM bookings")
    warm_confirmed = sum(1 for d in warm.results if d is not None and d.get("state") == "SUCCESS")
    sql = {"blocks_with_one_live_booking": int(one), "blocks_reserved": int(reserved), "bookings": int(in_database)}
    checks = {
        "peer_all_tasks_completed": not measured.errors and len(documents) == total,
        "peer_every_booking_confirmed": len(documents) == total
        and all(
            d is not None and d["state"] == "SUCCESS" and b.get("status") == "confirmed" and b.get("block_id") == block
            for d, b, block in zip(measured.results, made, blocks, strict=True)
        ),
        "peer_one_live_booking_per_block": int(one) == total and int(reserved) == total,
        "peer_distinct_bookings": len({b.get("id") for b in made}) == total
        and len({b.get("code") for b in made}) == total,
        "peer_no_extra_bookings": int(in_database) == total + warm_confirmed,
    }
    return checks, sql


def _accounted(costs: dict[str, float]) -> dict[str, float]:
    """``bench.cpu.per_operation_ms`` with the sum of its process groups added (the machine's total left out)."""
    if not costs:
        return {}
    return {**costs, ACCOUNTED: round(sum(v for k, v in costs.items() if k != MACHINE), 2)}


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 3)


def _floors(celery_ms: float | None, healthz_ms: float | None) -> float | None:
    """One Celery round trip plus two ``/healthz``: the least a booking (two requests, one task) costs."""
    if celery_ms is None or healthz_ms is None:
        return None
    return round(celery_ms + 2 * healthz_ms, 2)


def _comparison(
    figure: Figure, baseline: Figure, our_ms: dict[str, float], their_ms: dict[str, float]
) -> list[dict[str, Any]]:
    """The side-by-side rows: what, ours, the peer's, ours / the peer's."""
    rows: list[tuple[str, float | None, float | None]] = [
        ("bookings/s", figure.value, baseline.value),
        ("p50 submit->terminal ms", figure.latency_ms.get("p50"), baseline.latency_ms.get("p50")),
        ("p99 submit->terminal ms", figure.latency_ms.get("p99"), baseline.latency_ms.get("p99")),
    ]
    rows += [
        (f"CPU-ms/booking {group}", our_ms.get(group), their_ms.get(group)) for group in (*GROUPS, ACCOUNTED, MACHINE)
    ]
    return [{"what": what, "ours": o, "peer": p, "ratio": _ratio(o, p)} for what, o, p in rows]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _comparison_notes(rows: list[dict[str, Any]]) -> list[str]:
    width = max(len(r["what"]) for r in rows)
    lines = [f"{'ours beside the peer':{width}}  {'ours':>9}  {'peer':>9}  {'ours/peer':>9}"]
    for r in rows:
        lines.append(f"{r['what']:{width}}  {_fmt(r['ours']):>9}  {_fmt(r['peer']):>9}  {_fmt(r['ratio'], 3):>9}")
    return lines


def _floor_notes(
    ours: ScenarioResult, healthz: Measurement, peer_healthz: Measurement, floors: dict[str, Any]
) -> list[str]:
    celery_ms = floors["celery_round_trip"]["cpu_ms"].get(ACCOUNTED)
    healthz_ms = floors["healthz_ours"]["cpu_ms"].get(ACCOUNTED)
    peer_ms = floors["healthz_peer"]["cpu_ms"].get(ACCOUNTED)
    lines = [
        f"floors (same run): raw Celery no-op round trip {ours.baseline.value:,.1f}/s, {_fmt(celery_ms)} CPU-ms; "
        f"GET /healthz ours {healthz.per_second:,.1f}/s, {_fmt(healthz_ms)} CPU-ms "
        f"(the peer's {peer_healthz.per_second:,.1f}/s, {_fmt(peer_ms)} CPU-ms)",
    ]
    if floors["sum_cpu_ms"] is not None:
        cores = os.cpu_count() or 1
        ceiling = cores * 1000 / floors["sum_cpu_ms"] if floors["sum_cpu_ms"] else 0.0
        lines.append(
            f"floors' sum (1 round trip + 2 x /healthz) = {_fmt(floors['sum_cpu_ms'])} CPU-ms per booking "
            f"(at most {ceiling:,.0f} bookings/s on {cores} cores): ours {_fmt(floors['ours_over_sum'])} x it, "
            f"the peer {_fmt(floors['peer_over_sum'])} x it (moonshot: ours <= 2)"
        )
    return lines
