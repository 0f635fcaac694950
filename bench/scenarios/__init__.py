"""Benchmark scenarios, one module each, discovered by name.

A scenario module defines ``NAME`` (what ``--scenario`` takes), ``DESCRIPTION``, optionally
``ORDER`` (its place in a full run) and ``run(ctx: ScenarioContext) -> ScenarioResult``. It
starts the processes it needs on the shared stack (``with ctx.stack.running("api", "app_worker"):``),
seeds its own tenant (``bench/tenant.py``), measures its baseline and its figure in the same run,
runs its correctness checks, and returns; it never asserts a timing. Shared helpers live in
modules whose names start with ``_`` or outside this package (``bench/checks.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from bench.report import ScenarioResult
from bench.stack import BenchStack


@dataclass
class ScenarioContext:
    stack: BenchStack
    quick: bool
    #: Client threads (each one operation in flight) for the figure and its baseline alike.
    concurrency: int
    #: Whether ``--concurrency`` was given (it then overrides every scenario's own default).
    concurrency_set: bool = False
    #: Overrides the scenario's own operation count (``--jobs``).
    operations: int | None = None
    #: Send an ``Idempotency-Key`` with every job-creating POST, as a careful client would.
    idempotency_keys: bool = False
    #: ``--profile DIR``: record py-spy profiles of the API and worker during each figure phase.
    profile_dir: Path | None = None
    #: Results of the scenarios that already ran in this run, by name (``peer`` reuses ``bookings``').
    earlier: dict[str, ScenarioResult] = field(default_factory=dict)

    def size(self, full: int, quick: int) -> int:
        if self.operations is not None:
            return self.operations
        return quick if self.quick else full

    def warmup(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @contextlib.contextmanager
    def profiled(self, label: str) -> Iterator[None]:
        """Wrap a figure phase: py-spy records it when ``--profile`` was given, else nothing happens."""
        from bench.profile import recording

        with recording(self.stack, label, self.profile_dir):
            yield

    def clients(self, full: int, quick: int | None = None) -> int:
        """Client threads: ``--concurrency`` when given, else the scenario's own default."""
        if self.concurrency_set:
            return self.concurrency
        return quick if self.quick and quick is not None else full


def available() -> dict[str, ModuleType]:
    """Every scenario module under ``bench/scenarios/``, by ``NAME``, in run order (``ORDER``, then name)."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return dict(sorted(found.items(), key=lambda item: (getattr(item[1], "ORDER", 1000), item[0])))
