"""``events``: domain events delivered to an operator's webhook receiver per second, with their lag.

Figure: ``user.banned`` events of one organization recorded with ``app.events.record`` in units
of work of 100 (``bench.seed events``, the path every service's change takes), handed over to the
bus after each commit, fanned out by the ``operator_webhooks`` durable subscriber on the Celery
worker and POSTed, signed, to a local receiver (a threaded HTTP server in this process). Rate:
events received / (last arrival - first occurrence). Lag: each event's arrival minus its
``occurred_at`` (p50/p90/p99 as the figure's latency).

Baseline, measured in the same run: the raw ping rate, ``system.ping`` jobs (``sleep_ms`` 0) per
second submitted over HTTP and awaited to their end, through the same API, Postgres, Redis and
worker topology: what one trip through the job pipeline costs, against which an event's two
trips (subscriber, delivery) and its HTTP POST are read.

Decision: production's outbound policy refuses loopback receivers, so the figure's worker runs
the development profile with ``ALLOW_LOOPBACK_CALLBACKS`` (``BenchStack.start_loopback_worker``);
the baseline's worker is the production one. The phases never share the CPU.

Checks: every event arrived, each exactly once (by ``webhook-id`` = event id), every signature
verifies with ``standardwebhooks`` against the endpoint's secret, every delivery row is
``delivered`` after one attempt, and every baseline job succeeded.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.client import Api, Measurement, closed_loop
from bench.cpu import CpuSampler, per_operation_ms, phase_notes
from bench.report import Figure, ScenarioResult
from bench.scenarios import ScenarioContext
from bench.stack import BIN, WORKER_CONCURRENCY, say

NAME = "events"
ORDER = 8
DESCRIPTION = "domain events/s delivered to a local webhook receiver (lag p50/p99) vs system.ping jobs/s"
TARGET = 0.5
EVENTS = {"full": 2000, "quick": 40}
PINGS = {"full": 500, "quick": 20}
WARMUP = {"full": 50, "quick": 5}
DELIVERY_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 60.0


class Receiver:
    """A local webhook receiver: answers 200 at once and keeps (arrival, headers, body) per request."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, str], str]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                arrived = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with owner._lock:
                    owner.received.append((arrived, dict(self.headers), body))

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/estacionate-events"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= count:
                return True
            time.sleep(0.05)
        return False

    def reset(self) -> None:
        with self._lock:
            self.received.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    total = ctx.size(EVENTS["full"], EVENTS["quick"])
    pings = ctx.size(PINGS["full"], PINGS["quick"])
    warmup = ctx.warmup(WARMUP["full"], WARMUP["quick"])
    concurrency = ctx.clients(ctx.concurrency)

    user = stack.create_user()
    say(f"events: baseline, {pings} system.ping jobs over HTTP ({concurrency} client threads)")
    with stack.running("api", "app_worker"):
        api = Api(stack.api_url or "")
        try:
            api.login(user["email"], user["password"])
            ping = _pinger(api)
            closed_loop(warmup, concurrency, ping)
            sampler = CpuSampler(stack.process_groups())
            baseline = closed_loop(pings, concurrency, ping)
            baseline_cpu = sampler.cores()
        finally:
            api.close()
    say(f"events: baseline {baseline.per_second:.1f} jobs/s")

    receiver = Receiver()
    try:
        seeded = json.loads(
            stack.run_python_tool(
                [str(BIN / "python"), "-m", "bench.seed", "webhook-endpoint", "--url", receiver.url],
                "creating the webhook endpoint",
            )
            .strip()
            .splitlines()[-1]
        )
        organization_id = seeded["organization_id"]
        say(f"events: figure, {total} events delivered to a local receiver")
        with stack.running("loopback_worker"):
            _record(stack, organization_id, warmup)
            warm_ok = receiver.wait_for(warmup, DELIVERY_TIMEOUT_S)
            receiver.reset()
            sampler = CpuSampler(stack.process_groups())
            with ctx.profiled(NAME):
                _record(stack, organization_id, total)
                arrived = receiver.wait_for(total, DELIVERY_TIMEOUT_S)
            figure_cpu = sampler.cores()
            received = list(receiver.received)
    finally:
        receiver.close()
    figure, ids, signatures_ok = _measure(received, seeded["secret"], total)
    say(f"events: figure {figure.per_second:.1f} events/s, lag p50 {figure.percentile_ms(50)} ms")

    (delivered,) = stack.sql(
        "SELECT count(*) FILTER (WHERE status = 'delivered' AND attempts = 1) FROM webhook_endpoint_deliveries"
        " WHERE endpoint_id = %s AND event_id = ANY(%s::uuid[])",
        (seeded["endpoint_id"], list(ids)),
    )[0]
    (recorded,) = stack.sql("SELECT count(*) FROM events WHERE organization_id = %s", (organization_id,))[0]
    checks = {
        "all_delivered": arrived and len(ids) == total,
        "each_event_once": len(received) == len(ids) == total,
        "signatures_verified": signatures_ok,
        "delivered_in_one_attempt": delivered == total,
        "events_recorded": recorded == total + warmup and warm_ok,
        "baseline_all_succeeded": not baseline.errors
        and all(d is not None and d["status"] == "succeeded" for d in baseline.results),
        "not_throttled": api.retried == 0,
    }
    return ScenarioResult(
        scenario=NAME,
        figure=Figure.of("events/s delivered to a local webhook receiver (latency = lag)", "events/s", figure),
        baseline=Figure.of("system.ping jobs/s, HTTP submit + long-poll, same run", "jobs/s", baseline),
        target=TARGET,
        checks=checks,
        details={
            "events": total,
            "warmup_events": warmup,
            "pings": pings,
            "worker_concurrency": WORKER_CONCURRENCY,
            "lag_ms": figure.latency_summary(),
            "delivered_rows_one_attempt": delivered,
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


def _pinger(api: Api) -> Any:
    def ping(index: int) -> dict[str, Any]:
        return api.submit_and_await("/v1/system/ping", {"sleep_ms": 0}, timeout=JOB_TIMEOUT_S)

    return ping


def _record(stack: Any, organization_id: str, count: int) -> None:
    argv = [str(BIN / "python"), "-m", "bench.seed", "events", "--organization-id", organization_id]
    stack.run_python_tool([*argv, "--count", str(count)], "recording events")


def _measure(
    received: list[tuple[float, dict[str, str], str]], secret: str, total: int
) -> tuple[Measurement, set[str], bool]:
    """Rate from the first occurrence to the last arrival; one lag per event; every signature checked."""
    webhook = Webhook(secret)
    lags: list[float] = []
    ids: set[str] = set()
    occurred: list[float] = []
    verified = True
    for arrived, headers, body in received:
        try:
            payload = webhook.verify(body, {k.lower(): v for k, v in headers.items()})
        except WebhookVerificationError:
            verified = False
            continue
        ids.add(payload["id"])
        at = datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00")).timestamp()
        occurred.append(at)
        lags.append(max(arrived - at, 0.0))
    elapsed = (max(a for a, _, _ in received) - min(occurred)) if received and occurred else 0.0
    return Measurement(total, int(WORKER_CONCURRENCY), elapsed, lags, []), ids, verified
