"""``python -m tests.chaos [--ci] [--scenario NAME ...]`` (``make chaos``; ``CHAOS_ARGS=...``).

Starts the stack once (``tests/chaos/stack.py``), seeds the run's tenant and logs its residents in,
runs the chosen scenarios in order (all by default), prints the table on stdout (progress goes to
stderr) and writes the results as JSON.

``--ci`` is the part that runs in ``make test``: the same scenarios with shorter holds and a lighter
load, and the recovery clocks shortened through the settings operators have
(``CI_OVERRIDES``), so the whole run fits in about three minutes.

Exit status: 0 when every scenario passed every check; 1 when a check failed; 2 when the harness
itself failed (the stack did not start, a fault could not be injected) or was interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.stack import BenchError, say
from tests.chaos.inventory import make_tenant
from tests.chaos.load import Accounts
from tests.chaos.report import DEFAULT_CI_RESULTS, DEFAULT_RESULTS, document, table, write
from tests.chaos.run import CI, FULL, residents, run_scenario
from tests.chaos.scenarios import SCENARIOS, by_name
from tests.chaos.stack import ChaosStack
from tests.chaos.verdict import Row

#: The CI-sized run's recovery clocks (production's are 60 s republish, 5 s relay, 30 s grace):
#: the same mechanisms on a shorter clock. ``JOB_LEASE_SECONDS`` is the lease of a job whose worker
#: died, where the code separates it from the time limit (ignored where it does not).
CI_OVERRIDES = {
    "JOB_REPUBLISH_AFTER_SECONDS": "8",
    "RELAY_INTERVAL_SECONDS": "1",
    "JOB_LEASE_GRACE_SECONDS": "2",
    "JOB_LEASE_SECONDS": "10",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ci", action="store_true", help="the CI-sized run (shorter holds and clocks, lighter load)")
    p.add_argument("--scenario", action="append", metavar="NAME", help="run this scenario (repeatable; default: all)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--results", type=Path, metavar="PATH", help="where to write the JSON")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temporary directory (process logs)")
    return p


def _terminate_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    known = by_name()
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:24} hold {s.hold.full:g} s (CI {s.hold.ci:g} s)  {s.summary}")
        return 0
    chosen = args.scenario or [s.name for s in SCENARIOS]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        parser().error(f"unknown scenario {', '.join(unknown)} (known: {', '.join(known)})")
    results_path = args.results or (DEFAULT_CI_RESULTS if args.ci else DEFAULT_RESULTS)

    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    rows: list[Row] = []
    error: str | None = None
    began = time.monotonic()
    stack = ChaosStack(overrides=CI_OVERRIDES if args.ci else None, keep_workdir=args.keep_workdir)
    description: dict[str, Any] = {}
    try:
        stack.start()
        stack.start_all()
        description = stack.describe()
        people = residents(CI if args.ci else FULL)
        say(f"seeding the tenant and logging in {people} residents")
        tenant = make_tenant(stack, people)
        accounts = Accounts(tenant.residents, tenant.tokens)
        for name in chosen:
            row = run_scenario(stack, tenant, accounts, known[name], ci=args.ci)
            rows.append(row)
            say(f"{name}: {'PASS' if row.passed else 'FAIL ' + ', '.join(row.failed_checks())}")
            if row.error:
                error = error or f"{name}: {row.error}"
    except KeyboardInterrupt:
        error = "interrupted"
    except BenchError as exc:
        error = f"BenchError: {exc}"
        stack.dump_logs()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
        stack.dump_logs()
    finally:
        if any(not r.passed for r in rows):
            stack.dump_logs(40)
        stack.close()

    options = {"ci": args.ci, "scenarios": chosen, "seconds": round(time.monotonic() - began, 1)}
    write(results_path, document(rows, options=options, stack=description, error=error))
    if rows:
        print(table(rows), flush=True)
    say(f"results written to {results_path} ({options['seconds']} s)")
    if error is not None:
        say(f"harness error: {error}")
        return 2
    return 0 if rows and all(r.passed for r in rows) else 1
