"""Where the CPU went during a phase: per process group of the stack, the client, and the rest.

Read from ``/proc`` (Linux): the CPU time of every live process, and of the children it reaped, in
each of the stack's process groups or children of its leader (gunicorn and its workers, the Celery
worker and its pool, the embedded servers: PostgreSQL backends are children of the postmaster in
sessions of their own), this process's own (the load generator), and the whole machine's busy time
from ``/proc/stat``; ``other`` is the machine's busy time nobody here accounts for (external
servers, other users). Reported as cores used on average (1.0 = one core busy for the whole
phase). Elsewhere it reports nothing.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError):
        return 100


def _group_cpu(leaders: dict[str, int]) -> dict[str, float]:
    """CPU seconds per name: its leader, the leader's process group and the leader's children."""
    wanted = {pid: name for name, pid in leaders.items()}
    seconds = dict.fromkeys(leaders, 0.0)
    ticks = _ticks()
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = raw[raw.rfind(")") + 2 :].split()
        ppid, pgrp = int(fields[1]), int(fields[2])
        name = wanted.get(pgrp) or wanted.get(ppid) or wanted.get(int(entry.name))
        if name is not None:
            # utime + stime, plus cutime + cstime: the time of children it has reaped. A process
            # that exits during the phase (a PostgreSQL backend of a closed pool connection, a
            # recycled pool process) moves its time into its parent's, so nothing is lost.
            seconds[name] += sum(int(v) for v in fields[11:15]) / ticks
    return seconds


def _machine_busy() -> float:
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / _ticks()


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuSampler:
    """``sampler = CpuSampler(groups); ...phase...; sampler.cores()`` -> {name: cores used}."""

    def __init__(self, groups: dict[str, int]) -> None:
        """``groups``: name -> pid of a process-group leader (see ``BenchStack.process_groups``)."""
        self.groups = groups
        self.available = PROC.joinpath("stat").exists()
        self.began = time.perf_counter()
        self._before = self._sample() if self.available else {}

    def _sample(self) -> dict[str, float]:
        sample = _group_cpu(self.groups)
        sample["client (this process)"] = _self_cpu()
        sample["machine"] = _machine_busy()
        return sample

    def cores(self) -> dict[str, float]:
        if not self.available:
            return {}
        after = self._sample()
        wall = time.perf_counter() - self.began
        used = {name: (after[name] - self._before.get(name, 0.0)) / wall for name in after}
        used["other"] = used["machine"] - sum(v for k, v in used.items() if k != "machine")
        return {name: round(max(0.0, value), 2) for name, value in used.items()}


def describe(cpu: dict[str, float]) -> str:
    """``{name: cores}`` as one line for the notes under the table."""
    return ", ".join(f"{name} {value:.2f}" for name, value in cpu.items()) or "unknown (no /proc)"


def per_operation_ms(cpu: dict[str, float], elapsed_s: float, operations: int) -> dict[str, float]:
    """CPU milliseconds per operation for each consumer: ``cores * elapsed / operations``.

    What one operation costs the machine, wherever it runs: the budget to compare with what the
    target needs (on 2 cores, N operations/s leave 2000/N ms of CPU per operation in all).
    """
    if not cpu or operations <= 0:
        return {}
    skip = {"machine", "other"}
    costs = {name: round(cores * elapsed_s / operations * 1000, 2) for name, cores in cpu.items() if name not in skip}
    costs["total (machine)"] = round(cpu.get("machine", 0.0) * elapsed_s / operations * 1000, 2)
    return costs


def describe_ms(costs: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in costs.items()) or "unknown (no /proc)"


def phase_notes(label: str, cpu: dict[str, float], elapsed_s: float, operations: int) -> list[str]:
    """The lines under the table for one measured phase: cores used, and CPU ms per operation."""
    lines = [f"CPU cores used, {label}: {describe(cpu)}"]
    costs = per_operation_ms(cpu, elapsed_s, operations)
    if costs:
        lines.append(f"CPU ms per operation, {label}: {describe_ms(costs)}")
    return lines


def two_phase_cpu(
    figure: Any, baseline: Any, figure_cpu: dict[str, float], baseline_cpu: dict[str, float], opened: int | None
) -> tuple[dict[str, Any], list[str]]:
    """The CPU details and notes every HTTP scenario reports: cores and ms per operation, both phases.

    ``figure`` and ``baseline`` are measurements (``elapsed_s``, ``completed``); ``opened`` is how many
    PostgreSQL sessions the figure phase opened (pool overflow, reconnects).
    """
    details = {
        "postgres_sessions_opened_during_figure": opened,
        "cpu_cores_used": {"figure": figure_cpu, "baseline": baseline_cpu},
        "cpu_ms_per_operation": {
            "figure": per_operation_ms(figure_cpu, figure.elapsed_s, figure.completed),
            "baseline": per_operation_ms(baseline_cpu, baseline.elapsed_s, baseline.completed),
        },
    }
    notes = [
        *phase_notes("figure", figure_cpu, figure.elapsed_s, figure.completed),
        f"PostgreSQL sessions opened during the figure (pool overflow, reconnects): {opened}",
        *phase_notes("baseline", baseline_cpu, baseline.elapsed_s, baseline.completed),
    ]
    return details, notes
