"""``python -m bench [--scenario NAME] [--quick]`` (``make bench BENCH_ARGS=...``).

Starts the stack once (``bench/stack.py``), runs the chosen scenarios (all by default), prints
the table on stdout (progress goes to stderr) and writes the results as JSON.

Exit status: 0 when every scenario's correctness checks passed, whether or not figures met their
targets (that is reported, never asserted); 1 when a correctness check failed; 2 when the harness
itself failed (the stack did not start, a process died, a scenario raised) or was interrupted. A
scenario that raises is listed in the table as ERROR and the next one still runs (unless the
stack could not start: then nothing runs).
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from bench.report import DEFAULT_QUICK_RESULTS, DEFAULT_RESULTS, ScenarioResult, document, table, write
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
    p.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="operations per phase, overriding the scenario's (recalc: about N blocks; generate: N spots)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        metavar="C",
        help="client threads (one operation in flight each) for figure and baseline (default: the scenario's, "
        f"{DEFAULT_CONCURRENCY} for queue and bookings, 64 for contention and accept)",
    )
    p.add_argument("--idempotency-keys", action="store_true", help="send an Idempotency-Key with every job POST")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles of the API and worker during each figure phase into DIR (needs py-spy; "
        "figures of a profiled run are perturbed)",
    )
    p.add_argument(
        "--results",
        type=Path,
        metavar="PATH",
        help=f"where to write the JSON (default {DEFAULT_RESULTS.relative_to(DEFAULT_RESULTS.parents[2])}; "
        f"with --quick {DEFAULT_QUICK_RESULTS.relative_to(DEFAULT_RESULTS.parents[2])})",
    )
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
    if args.results is None:
        args.results = DEFAULT_QUICK_RESULTS if args.quick else DEFAULT_RESULTS
    scenarios = available()
    if args.list:
        for name, module in scenarios.items():
            print(f"{name:12} {module.DESCRIPTION}")
        return 0
    chosen = args.scenario or list(scenarios)
    unknown = [name for name in chosen if name not in scenarios]
    if unknown:
        parser().error(f"unknown scenario {', '.join(unknown)} (known: {', '.join(sorted(scenarios))})")

    if args.profile:
        from bench.profile import py_spy

        try:
            py_spy()
        except BenchError as exc:
            parser().error(str(exc))
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
                concurrency=args.concurrency or DEFAULT_CONCURRENCY,
                concurrency_set=args.concurrency is not None,
                operations=args.jobs,
                idempotency_keys=args.idempotency_keys,
                profile_dir=args.profile,
                earlier={r.scenario: r for r in results},
            )
            try:
                results.append(scenarios[name].run(ctx))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # this scenario failed; the table still lists it, the next one runs
                if not isinstance(exc, BenchError):  # a BenchError explains itself
                    traceback.print_exc(file=sys.stderr)
                say(f"scenario {name} failed: {type(exc).__name__}: {exc}")
                stack.dump_logs()
                results.append(ScenarioResult.failed(name, f"{type(exc).__name__}: {exc}"[:2000]))
                error = error or f"scenario {name} raised {type(exc).__name__}"
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
        "profile": str(args.profile) if args.profile else None,
    }
    write(args.results, document(results, options=options, stack=stack_description, error=error))
    if results:
        print(table(results), flush=True)
    say(f"results written to {args.results}")
    if error is not None:
        say(f"harness error: {error}")
        return 2
    return 0 if all(r.ok for r in results) else 1
