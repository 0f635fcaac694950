"""Where the CPU went during a phase: per process group of the stack, the client, and the rest.

Read from ``/proc`` (Linux): the CPU time of every live process in each of the stack's process
groups or children of its leader (gunicorn and its workers, the Celery worker and its pool, the
embedded servers: PostgreSQL backends are children of the postmaster in sessions of their own), this
process's own (the load generator), and the whole machine's busy time from ``/proc/stat``;
``other`` is the machine's busy time nobody here accounts for (external servers, other users).
Reported as cores used on average (1.0 = one core busy for the whole phase). Elsewhere it
reports nothing.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

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
            seconds[name] += (int(fields[11]) + int(fields[12])) / ticks
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
