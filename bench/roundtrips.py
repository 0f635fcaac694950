"""Round trips per request and per job: ``python -m bench.roundtrips [--requests N]``.

A diagnostic, not a benchmark (no timing): on the benchmark's stack (production profile, embedded
PostgreSQL, which it needs: it reads the server's log), it turns on ``log_statement = 'all'`` for
the run's database and counts, per operation, the SQL statements PostgreSQL received and the Redis
commands (``INFO commandstats``) of:

- ``POST /v1/bookings`` (the API alone; the worker is stopped meanwhile);
- the ``booking.create`` job (the worker alone, draining what the POSTs queued);
- ``GET /v1/jobs/{id}?wait=`` on a job that is already terminal;
- ``POST /v1/system/ping`` and the ``system.ping`` job.

Every statement is a network round trip on the request's or the job's critical path; the counts
are what the "what limits each figure" section of ``bench/README.md`` quotes.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.checks import booking_body
from bench.client import Api
from bench.stack import BenchError, BenchStack, say
from bench.tenant import add_blocks, add_spots, block_ids, login_residents, seed_tenant


class Counters:
    def __init__(self, stack: BenchStack) -> None:
        self.log = stack.embedded_postgres.log if stack.embedded_postgres is not None else None
        if self.log is None:
            raise BenchError("bench.roundtrips reads the embedded PostgreSQL's log: unset DATABASE_URL")
        self.stack = stack

    def _redis(self) -> dict[str, int]:
        client = self.stack.redis()
        try:
            return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}
        finally:
            client.close()

    def measure(self, operations: int, action: Callable[[], Any]) -> dict[str, Any]:
        assert self.log is not None
        position, redis_before = self.log.stat().st_size, self._redis()
        action()
        time.sleep(1.0)  # the log and the counters catch up
        with open(self.log, errors="replace") as handle:
            handle.seek(position)
            text = handle.read()
        statements: Counter[str] = Counter()
        for match in re.finditer(r"statement: (.*)", text):
            words = match.group(1).split()
            statements[" ".join(words[:4])[:60] or "(multi-line statement)"] += 1
        redis_after = self._redis()
        commands = {k: v - redis_before.get(k, 0) for k, v in redis_after.items() if v != redis_before.get(k, 0)}
        return {
            "sql_per_operation": round(sum(statements.values()) / operations, 2),
            "redis_per_operation": round(sum(commands.values()) / operations, 2),
            "sql": {k: round(v / operations, 2) for k, v in statements.most_common()},
            "redis": {k: round(v / operations, 2) for k, v in sorted(commands.items(), key=lambda kv: -kv[1])},
        }


def _pending(stack: BenchStack) -> int:
    return int(stack.sql("SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')")[0][0])


def _drain(stack: BenchStack) -> None:
    with stack.running("app_worker"):
        while _pending(stack):
            time.sleep(0.2)


def run(requests: int) -> dict[str, dict[str, Any]]:
    stack = BenchStack()
    try:
        stack.start()
        counters = Counters(stack)
        tenant = seed_tenant(stack, "roundtrips", residents=4, max_upcoming=1_000_000)
        add_spots(stack, tenant.building, 1 + (2 * requests + 2) // 56)
        add_blocks(stack, tenant.building, 56)
        blocks = block_ids(stack, tenant.building)
        stack.maintenance(f"ALTER DATABASE \"{stack.database_name}\" SET log_statement = 'all'")
        found: dict[str, dict[str, Any]] = {}
        with stack.running("api"):
            api = Api(stack.api_url or "")
            login_residents(api, tenant)

            def token(i: int) -> str:
                return tenant.tokens[i % len(tenant.tokens)]

            api.submit("/v1/bookings", booking_body(blocks[-1], 0), token=token(0))  # warm the API
            found["POST /v1/bookings (API)"] = counters.measure(
                requests,
                lambda: [
                    api.submit("/v1/bookings", booking_body(blocks[i], i), token=token(i)) for i in range(requests)
                ],
            )
            found["booking.create job (worker)"] = counters.measure(requests + 1, lambda: _drain(stack))
            pings: list[dict[str, Any]] = []
            found["POST /v1/system/ping (API)"] = counters.measure(
                requests,
                lambda: pings.extend(api.submit("/v1/system/ping", {}, token=token(i)) for i in range(requests)),
            )
            found["system.ping job (worker)"] = counters.measure(requests, lambda: _drain(stack))
            done = pings[0]["status_url"]
            found["GET /v1/jobs/{id}?wait=5, job terminal (API)"] = counters.measure(
                requests, lambda: [api.await_job(done, token=token(0)) for _ in range(requests)]
            )
            api.close()
        return found
    finally:
        stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20, help="operations of each kind (default 20)")
    args = parser.parse_args(argv)
    try:
        found = run(args.requests)
    except BenchError as exc:
        say(str(exc))
        return 2
    for what, counts in found.items():
        print(f"{what}: {counts['sql_per_operation']} SQL statements, {counts['redis_per_operation']} Redis commands")
        for statement, n in counts["sql"].items():
            print(f"    {n:5.2f}  {statement}")
        print("    redis: " + ", ".join(f"{k} {v}" for k, v in counts["redis"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
