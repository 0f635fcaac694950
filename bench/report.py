"""Results: what a scenario returns, the table on stdout and the JSON file (``bench/results/latest.json``)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.client import Measurement

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "bench" / "results" / "latest.json"
#: Where ``--quick`` writes unless told otherwise: a smoke run must not replace the real figures.
DEFAULT_QUICK_RESULTS = ROOT / "bench" / "results" / "latest-quick.json"


@dataclass
class Figure:
    """One measured rate, with the latency of the operations that made it."""

    name: str
    value: float
    unit: str
    operations: int
    concurrency: int
    elapsed_s: float
    latency_ms: dict[str, float | None]
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, unit: str, measurement: Measurement) -> Figure:
        return cls(
            name=name,
            value=round(measurement.per_second, 2),
            unit=unit,
            operations=measurement.completed,
            concurrency=measurement.concurrency,
            elapsed_s=round(measurement.elapsed_s, 3),
            latency_ms=measurement.latency_summary(),
            errors=measurement.errors[:20],
        )

    @classmethod
    def duration(
        cls,
        name: str,
        seconds: float,
        *,
        operations: int = 1,
        concurrency: int = 1,
        latencies_s: list[float] | None = None,
        errors: list[str] | None = None,
    ) -> Figure:
        """A time to finish something (lower is better), in seconds."""
        latency: dict[str, float | None] = {"p50": None, "p90": None, "p99": None}
        if latencies_s:
            latency = Measurement(len(latencies_s), concurrency, seconds, latencies_s, []).latency_summary()
        return cls(
            name=name,
            value=round(seconds, 3),
            unit="s",
            operations=operations,
            concurrency=concurrency,
            elapsed_s=round(seconds, 3),
            latency_ms=latency,
            errors=(errors or [])[:20],
        )

    @classmethod
    def rate(cls, name: str, unit: str, operations: int, seconds: float) -> Figure:
        """``operations`` done by one thing (a job, a statement) in ``seconds``, as a rate (higher is better)."""
        return cls(
            name=name,
            value=round(operations / seconds, 2),
            unit=unit,
            operations=operations,
            concurrency=1,
            elapsed_s=round(seconds, 3),
            latency_ms={"p50": None, "p90": None, "p99": None},
        )


@dataclass
class Target:
    """A secondary target besides the ratio (a latency ceiling, a memory ceiling)."""

    name: str
    value: float | None
    unit: str
    #: ``"<="``, ``"<"``, ``">="`` or ``">"``: how ``value`` must compare with ``limit``.
    op: str
    limit: float

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return {
            "<=": self.value <= self.limit,
            "<": self.value < self.limit,
            ">=": self.value >= self.limit,
            ">": self.value > self.limit,
        }[self.op]

    def label(self) -> str:
        return f"{self.name} {self.op} {self.limit:g}{' ' + self.unit if self.unit else ''}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class ScenarioResult:
    scenario: str
    figure: Figure
    baseline: Figure
    target: float
    #: Correctness checks, each name -> passed. A failed check makes the figure meaningless.
    checks: dict[str, bool]
    details: dict[str, Any] = field(default_factory=dict)
    #: Extra lines printed under the table (e.g. where the CPU went).
    notes: list[str] = field(default_factory=list)
    #: ``True`` for rates (figure / baseline must reach the target), ``False`` for durations
    #: (figure / baseline must stay at or under it).
    higher_is_better: bool = True
    #: Further targets that must all be met too (p99 ceiling, worker memory).
    extra_targets: list[Target] = field(default_factory=list)
    #: Set when the scenario could not complete (an exception); its figures are meaningless.
    error: str | None = None
    #: Set when the scenario could not run here and said why (``peer`` without the peer app): it
    #: measured and checked nothing, and fails nothing.
    skipped: str | None = None

    @classmethod
    def failed(cls, scenario: str, error: str, *, target: float = 0.0) -> ScenarioResult:
        empty = Figure("not measured", 0.0, "", 0, 0, 0.0, {"p50": None, "p90": None, "p99": None})
        return cls(scenario, empty, empty, target, {"completed": False}, error=error)

    @classmethod
    def skip(cls, scenario: str, reason: str) -> ScenarioResult:
        empty = Figure("not measured", 0.0, "", 0, 0, 0.0, {"p50": None, "p90": None, "p99": None})
        return cls(scenario, empty, empty, 0.0, {}, skipped=reason)

    @property
    def ratio(self) -> float:
        return self.figure.value / self.baseline.value if self.baseline.value > 0 else 0.0

    @property
    def meets_ratio(self) -> bool:
        if self.error is not None or self.baseline.value <= 0 or self.figure.value <= 0:
            return False
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    @property
    def meets_target(self) -> bool:
        return self.meets_ratio and all(t.met for t in self.extra_targets)

    @property
    def target_label(self) -> str:
        labels = [f"{'>=' if self.higher_is_better else '<='} {self.target}"]
        labels += [t.label() for t in self.extra_targets]
        return "; ".join(labels)

    @property
    def checks_passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(self.checks.values())

    @property
    def ok(self) -> bool:
        """Nothing went wrong: its checks passed, or it was skipped (and said why)."""
        return self.skipped is not None or self.checks_passed

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "figure": asdict(self.figure),
            "baseline": asdict(self.baseline),
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "target_direction": ">=" if self.higher_is_better else "<=",
            "meets_ratio": self.meets_ratio,
            "extra_targets": [t.as_dict() for t in self.extra_targets],
            "meets_target": self.meets_target,
            "checks": self.checks,
            "checks_passed": self.checks_passed,
            "error": self.error,
            "skipped": self.skipped,
            "details": self.details,
            "notes": self.notes,
        }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: list[ScenarioResult]) -> str:
    header = ["scenario", "figure", "baseline", "ratio", "target", "result", "p50 ms", "p99 ms", "checks"]
    rows = [header]
    for r in results:
        if r.error is not None:
            rows.append([r.scenario, "-", "-", "-", "-", "ERROR", "-", "-", "ERROR (see below)"])
            continue
        if r.skipped is not None:
            rows.append([r.scenario, "-", "-", "-", "-", "SKIPPED", "-", "-", "skipped (see below)"])
            continue
        digits = 1 if r.higher_is_better else 2
        rows.append(
            [
                r.scenario,
                f"{_fmt(r.figure.value, digits)} {r.figure.unit}",
                f"{_fmt(r.baseline.value, digits)} {r.baseline.unit}",
                _fmt(r.ratio, 3),
                r.target_label,
                "PASS" if r.meets_target else "FAIL",
                _fmt(r.figure.latency_ms.get("p50")),
                _fmt(r.figure.latency_ms.get("p99")),
                "ok" if r.checks_passed else "FAILED: " + ", ".join(k for k, v in r.checks.items() if not v),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes: list[str] = []
    for r in results:
        pad = " " * len(r.scenario)
        if r.error is not None:
            notes.append(f"{r.scenario}: ERROR {r.error}")
            continue
        if r.skipped is not None:
            notes.append(f"{r.scenario}: skipped: {r.skipped}")
            continue
        notes.append(f"{r.scenario}: figure   = {r.figure.name}")
        baseline_latency = ""
        if r.baseline.latency_ms.get("p50") is not None:
            p50, p99 = r.baseline.latency_ms.get("p50"), r.baseline.latency_ms.get("p99")
            baseline_latency = f" (p50/p99 {_fmt(p50)}/{_fmt(p99)} ms)"
        notes.append(f"{pad}  baseline = {r.baseline.name}{baseline_latency}")
        for extra in r.extra_targets:
            value = "-" if extra.value is None else f"{extra.value:,.1f} {extra.unit}".rstrip()
            notes.append(
                f"{pad}  {extra.name} = {value} (target {extra.op} {extra.limit:g}): {'met' if extra.met else 'MISSED'}"
            )
        notes.extend(f"{pad}  {note}" for note in r.notes)
    return "\n".join([*lines, "", *notes])


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def document(
    results: list[ScenarioResult], *, options: dict[str, Any], stack: dict[str, Any], error: str | None = None
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "host": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "note": "load generator, API, workers and servers share this machine",
        },
        "options": options,
        "stack": stack,
        "scenarios": [r.as_dict() for r in results],
        "all_checks_passed": error is None and all(r.ok for r in results),
        "error": error,
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
