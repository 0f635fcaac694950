"""``python -m bench [--scenario NAME] [--quick]`` (``make bench BENCH_ARGS=...``).

Starts the stack once (``bench/stack.py``), runs the chosen scenarios (all by default), prints
the table on stdout (progress goes to stderr) and writes the results as JSON.

Exit status: 0 when every scenario's correctness checks passed, whether or not figures met their
targets (that is reported, never asserted); 1 when a correctness check failed; 2 when the harness
itself failed (the stack did not start, a process died) or was interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from bench.report import DEFAULT_RESULTS, ScenarioResult, document, table, write
from bench.scenarios import ScenarioContext, available
from bench.stack import BenchError, BenchStack, say

DEFAULT_CONCURRENCY = 16


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenario", action="append", metavar="NAME", help="run this scenario (repeatable; default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the harness, not a figure")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--jobs", type=_positive, metavar="N", help="operations per phase (overrides the scenario's)")
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=DEFAULT_CONCURRENCY,
        metavar="C",
        help=f"client threads (one operation in flight each) for figure and baseline (default {DEFAULT_CONCURRENCY})",
    )
    p.add_argument("--idempotency-keys", action="store_true", help="send an Idempotency-Key with every job POST")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="PATH", help="where to write the JSON")
    p.add_argument(
        "--flush-redis", action="store_true", help="empty a non-empty REDIS_URL db first (it is flushed on exit anyway)"
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep the temporary directory (process logs)")
    return p


def _terminate_like_ctrl_c(signum: int, frame: object) -> None:
    """A supervisor's SIGTERM cleans up like Ctrl-C: processes, database, servers."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    scenarios = available()
    if args.list:
        for name, module in sorted(scenarios.items()):
            print(f"{name:12} {module.DESCRIPTION}")
        return 0
    chosen = args.scenario or sorted(scenarios)
    unknown = [name for name in chosen if name not in scenarios]
    if unknown:
        parser().error(f"unknown scenario {', '.join(unknown)} (known: {', '.join(sorted(scenarios))})")

    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    results: list[ScenarioResult] = []
    error: str | None = None
    stack = BenchStack(flush_redis=args.flush_redis, keep_workdir=args.keep_workdir)
    stack_description: dict[str, Any] = {}
    try:
        stack.start()
        stack_description = stack.describe()
        for name in chosen:
            say(f"scenario {name}")
            ctx = ScenarioContext(
                stack=stack,
                quick=args.quick,
                concurrency=args.concurrency,
                operations=args.jobs,
                idempotency_keys=args.idempotency_keys,
            )
            results.append(scenarios[name].run(ctx))
    except KeyboardInterrupt:
        error = "interrupted"
    except BenchError as exc:  # explained in its message; the processes' logs say the rest
        error = f"BenchError: {exc}"
        stack.dump_logs()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
        stack.dump_logs()
    finally:
        stack.close()

    options = {
        "scenarios": chosen,
        "quick": args.quick,
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "idempotency_keys": args.idempotency_keys,
    }
    write(args.results, document(results, options=options, stack=stack_description, error=error))
    if results:
        print(table(results), flush=True)
    say(f"results written to {args.results}")
    if error is not None:
        say(f"harness error: {error}")
        return 2
    return 0 if all(r.checks_passed for r in results) else 1
