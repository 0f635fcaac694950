"""``login``: the API stays responsive while logins flood it (argon2 at production cost).

A login costs one argon2id hash at production cost (argon2-cffi's defaults: 3 passes over 64 MiB,
4 lanes): tens of milliseconds of every core. Without a cap, a flood of logins from a few hundred
addresses (each within its per-address limit) queues every gunicorn thread behind hashing and the
API, health checks included, stops answering. The cap (``PASSWORD_HASH_CONCURRENCY`` hashes at once
per process, ``app/security/passwords.py``) answers the excess ``503 service-unavailable`` with
``Retry-After`` at once instead.

Figure: ``GET /healthz`` answered per second by one prober connection (one request in flight,
closed loop) DURING a flood of ``POST /v1/auth/login`` from 64 threads (``--quick``: 16), each
logging in as a resident of its own with the right password, as fast as it is answered, for 20 s
(``--quick``: 3 s). Its p99 latency is the point (an extra target). Baseline, same server and
prober: ``GET /healthz`` per second with no flood. So the ratio is how much of its idle
responsiveness the API keeps under the flood (a single closed-loop prober's rate is one over its
mean latency).

Reported alongside (not targets): completed logins per second, the share answered 503, and the
logins' p50/p99 latency.

Checks: every healthz answered 200; every login answered 200 (tokens) or 503 (with Retry-After and
the service-unavailable problem), nothing else (no 429: each thread is its own resident, from an
address whose login ceiling the bench lifts); at least one login of the flood succeeded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from bench.client import Api, Measurement, closed_loop
from bench.cpu import CpuSampler, phase_notes
from bench.report import Figure, ScenarioResult, Target
from bench.scenarios import ScenarioContext
from bench.stack import say
from bench.tenant import seed_tenant

NAME = "login"
ORDER = 7  # after the six
DESCRIPTION = "GET /healthz/s and p99 during a flood of logins (64 threads, production argon2) vs idle"
#: The API must keep at least half its idle responsiveness under the flood ...
TARGET = 0.5
#: ... and answer a health check within this, at the 99th percentile.
P99_TARGET_MS = 100.0
CLIENTS = {"full": 64, "quick": 16}
FLOOD_SECONDS = {"full": 20.0, "quick": 3.0}
BASELINE_PROBES = {"full": 2000, "quick": 200}
WARMUP = {"full": 50, "quick": 10}


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    clients = ctx.clients(CLIENTS["full"], CLIENTS["quick"])
    flood_seconds = FLOOD_SECONDS["quick" if ctx.quick else "full"]
    probes = ctx.size(BASELINE_PROBES["full"], BASELINE_PROBES["quick"])
    tenant = seed_tenant(stack, "login", residents=clients)
    say(f"login: seeded {len(tenant.residents)} residents (one per flooding thread)")

    with stack.running("api"):
        api = Api(stack.api_url or "")
        try:
            closed_loop(ctx.warmup(WARMUP["full"], WARMUP["quick"]), 1, lambda i: _probe(api))
            for person in tenant.residents[:2]:  # warm the login path (one at a time: under the cap)
                api.login(person["email"], person["password"], default=False)

            say(f"login: baseline, {probes} GET /healthz on one connection, no flood")
            sampler = CpuSampler(stack.process_groups())
            baseline = closed_loop(probes, 1, lambda i: _probe(api))
            baseline_cpu = sampler.cores()
            say(f"login: baseline {baseline.per_second:.1f} req/s, p99 {baseline.percentile_ms(99)} ms")

            say(f"login: figure, {flood_seconds:.0f} s of logins from {clients} threads, probing /healthz meanwhile")
            sampler = CpuSampler(stack.process_groups())
            with ctx.profiled(NAME):
                figure, flood = _flood(api, tenant.residents, clients, flood_seconds)
            figure_cpu = sampler.cores()
        finally:
            api.close()

    statuses = Counter(outcome["status"] for outcome in flood.results if outcome is not None)
    answered = sum(statuses.values())
    ok, busy = statuses.get(200, 0), statuses.get(503, 0)
    logins_per_second = ok / flood.elapsed_s if flood.elapsed_s > 0 else 0.0
    busy_share = busy / answered if answered else 0.0
    ok_latencies = [o["seconds"] for o in flood.results if o is not None and o["status"] == 200]
    ok_latency = Measurement(len(ok_latencies), clients, flood.elapsed_s, ok_latencies, []).latency_summary()
    say(
        f"login: healthz {figure.per_second:.1f} req/s (p99 {figure.percentile_ms(99)} ms) under "
        f"{logins_per_second:.1f} logins/s, {busy_share:.0%} of logins answered 503"
    )
    checks = {
        "healthz_all_200": all(r == 200 for r in baseline.results) and all(r == 200 for r in figure.results),
        "logins_answered_200_or_503": answered > 0 and set(statuses) <= {200, 503} and not flood.errors,
        "busy_answers_are_problems_with_retry_after": all(
            o["busy_ok"] for o in flood.results if o is not None and o["status"] == 503
        ),
        "some_logins_succeeded": ok > 0,
        "not_throttled": 429 not in statuses,
    }
    figure_result = Figure.of("GET /healthz/s on one connection, during the login flood", "req/s", figure)
    return ScenarioResult(
        scenario=NAME,
        figure=figure_result,
        baseline=Figure.of("GET /healthz/s on one connection, no flood", "req/s", baseline),
        target=TARGET,
        extra_targets=[
            Target("healthz p99 under the flood", figure_result.latency_ms.get("p99"), "ms", "<=", P99_TARGET_MS)
        ],
        checks=checks,
        details={
            "flooding_threads": clients,
            "flood_seconds": round(flood.elapsed_s, 2),
            "password_hash_concurrency_per_process": int(stack.env.get("PASSWORD_HASH_CONCURRENCY") or 2),
            "logins": {
                "answered": answered,
                "by_status": {str(k): v for k, v in sorted(statuses.items())},
                "succeeded_per_second": round(logins_per_second, 1),
                "share_503": round(busy_share, 3),
                "latency_ms_succeeded": ok_latency,
                "latency_ms_all": flood.latency_summary(),
                "errors": flood.errors[:5],
            },
            "healthz_latency_ms": {"idle": baseline.latency_summary(), "flood": figure.latency_summary()},
            "cpu_cores_used": {"figure": figure_cpu, "baseline": baseline_cpu},
        },
        notes=[
            f"logins during the flood: {logins_per_second:.1f} succeeded/s (p50 {ok_latency['p50']} ms, "
            f"p99 {ok_latency['p99']} ms), {busy_share:.0%} of {answered} answered 503 service-unavailable",
            f"GET /healthz p50/p99: idle {baseline.percentile_ms(50)}/{baseline.percentile_ms(99)} ms, "
            f"under the flood {figure.percentile_ms(50)}/{figure.percentile_ms(99)} ms",
            *phase_notes("figure (flood + prober)", figure_cpu, flood.elapsed_s, max(1, answered)),
            *phase_notes("baseline (prober alone)", baseline_cpu, baseline.elapsed_s, baseline.completed),
        ],
    )


def _probe(api: Api) -> int:
    return api.session().get(f"{api.base_url}/healthz", timeout=(5, 30)).status_code


def _flood(api: Api, residents: list[dict[str, str]], clients: int, seconds: float) -> tuple[Measurement, Measurement]:
    """``clients`` threads log in (each as its own resident) until ``seconds`` pass; one more thread
    probes ``/healthz`` meanwhile. Returns (the probes, the logins); nothing is retried."""
    stop = threading.Event()
    lock = threading.Lock()
    probes: list[tuple[float, int]] = []
    logins: list[dict[str, Any]] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 2)

    def login_loop(index: int) -> None:
        person = residents[index % len(residents)]
        body = {"email": person["email"], "password": person["password"]}
        start.wait()
        while not stop.is_set():
            began = time.perf_counter()
            try:
                response = api.session().post(f"{api.base_url}/v1/auth/login", json=body, timeout=(5, 60))
            except Exception as exc:
                with lock:
                    errors.append(f"login: {exc!r}"[:300])
                continue
            outcome = {"status": response.status_code, "seconds": time.perf_counter() - began, "busy_ok": True}
            if response.status_code == 503:
                outcome["busy_ok"] = (
                    response.headers.get("Content-Type", "").startswith("application/problem+json")
                    and response.json().get("type") == "/problems/service-unavailable"
                    and int(response.headers.get("Retry-After") or 0) >= 1
                )
            with lock:
                logins.append(outcome)

    def probe_loop() -> None:
        start.wait()
        while not stop.is_set():
            began = time.perf_counter()
            try:
                status = _probe(api)
            except Exception as exc:
                with lock:
                    errors.append(f"healthz: {exc!r}"[:300])
                continue
            with lock:
                probes.append((time.perf_counter() - began, status))

    threads = [threading.Thread(target=login_loop, args=(i,), daemon=True) for i in range(clients)]
    threads.append(threading.Thread(target=probe_loop, daemon=True))
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    probe_errors = [e for e in errors if e.startswith("healthz")]
    login_errors = [e for e in errors if e.startswith("login")]
    probed = Measurement(len(probes), 1, elapsed, [p[0] for p in probes], [p[1] for p in probes], probe_errors)
    flooded = Measurement(len(logins), clients, elapsed, [o["seconds"] for o in logins], logins, login_errors)
    return probed, flooded
