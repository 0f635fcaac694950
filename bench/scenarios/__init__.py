"""Benchmark scenarios, one module each, discovered by name.

A scenario module defines ``NAME`` (what ``--scenario`` takes), ``DESCRIPTION`` and
``run(ctx: ScenarioContext) -> ScenarioResult``. It starts the processes it needs on the shared
stack (``with ctx.stack.running("api", "app_worker"):``), measures its baseline and its figure in
the same run, runs its correctness checks, and returns; it never asserts a timing.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from bench.stack import BenchStack


@dataclass
class ScenarioContext:
    stack: BenchStack
    quick: bool
    #: Client threads (each one operation in flight) for the figure and its baseline alike.
    concurrency: int
    #: Overrides the scenario's own operation count (``--jobs``).
    operations: int | None = None
    #: Send an ``Idempotency-Key`` with every job-creating POST, as a careful client would.
    idempotency_keys: bool = False

    def size(self, full: int, quick: int) -> int:
        if self.operations is not None:
            return self.operations
        return quick if self.quick else full

    def warmup(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def available() -> dict[str, ModuleType]:
    """Every scenario module under ``bench/scenarios/``, by ``NAME``."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return found
