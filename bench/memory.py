"""Peak resident memory (RSS) of one of the stack's process groups while a phase runs.

A background thread reads ``VmRSS`` from ``/proc/<pid>/status`` of every live process in the
group (its leader, the leader's process group and its children: the Celery worker and its pool
processes) every ``interval`` seconds. Reports the peak of the largest single process (the pool
process running a job) and the peak of the group's sum. Linux only; elsewhere it reports nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _members(leader: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        pid, ppid, pgrp = int(entry.name), int(fields[1]), int(fields[2])
        if leader in (pid, ppid, pgrp):
            found.append(pid)
    return found


def _rss_kib(pid: int) -> int | None:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssSampler:
    """``with RssSampler(leader_pid) as rss: ...phase...``; then ``rss.summary()`` (MB)."""

    def __init__(self, leader: int, interval: float = 0.05) -> None:
        self.leader = leader
        self.interval = interval
        self.available = PROC.joinpath("self", "status").exists()
        self.peak_process_kib = 0
        self.peak_total_kib = 0
        self.samples = 0
        self._pids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-rss", daemon=True)

    def _sample(self) -> None:
        if self.samples % 20 == 0:  # the group's members rarely change: rescan /proc about once a second
            self._pids = _members(self.leader)
        sizes = [size for pid in self._pids if (size := _rss_kib(pid)) is not None]
        if sizes:
            self.peak_process_kib = max(self.peak_process_kib, max(sizes))
            self.peak_total_kib = max(self.peak_total_kib, sum(sizes))
            self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        if self.available:
            self._sample()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        if not self.available or not self.samples:
            return {"peak_process_mb": None, "peak_group_mb": None, "samples": 0}
        return {
            "peak_process_mb": round(self.peak_process_kib / 1024, 1),
            "peak_group_mb": round(self.peak_total_kib / 1024, 1),
            "samples": self.samples,
        }
