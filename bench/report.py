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

    @property
    def ratio(self) -> float:
        return self.figure.value / self.baseline.value if self.baseline.value > 0 else 0.0

    @property
    def meets_target(self) -> bool:
        return self.ratio >= self.target

    @property
    def checks_passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "figure": asdict(self.figure),
            "baseline": asdict(self.baseline),
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "meets_target": self.meets_target,
            "checks": self.checks,
            "checks_passed": self.checks_passed,
            "details": self.details,
            "notes": self.notes,
        }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: list[ScenarioResult]) -> str:
    header = ["scenario", "figure", "baseline", "ratio", "target", "result", "p50 ms", "p99 ms", "checks"]
    rows = [header]
    for r in results:
        rows.append(
            [
                r.scenario,
                f"{_fmt(r.figure.value)} {r.figure.unit}",
                f"{_fmt(r.baseline.value)} {r.baseline.unit}",
                _fmt(r.ratio, 3),
                f">= {r.target}",
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
        notes.append(f"{r.scenario}: figure   = {r.figure.name}")
        notes.append(
            f"{' ' * len(r.scenario)}  baseline = {r.baseline.name} "
            f"(p50/p99 {_fmt(r.baseline.latency_ms.get('p50'))}/{_fmt(r.baseline.latency_ms.get('p99'))} ms)"
        )
        notes.extend(f"{' ' * len(r.scenario)}  {note}" for note in r.notes)
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
        "all_checks_passed": error is None and all(r.checks_passed for r in results),
        "error": error,
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
