"""``system.ping``: a job that does nothing but wait and answer, for tests and benchmarks."""

from __future__ import annotations

import time
from typing import Any

from app.jobs import JobRun
from app.problems import Problem


def ping(run: JobRun) -> dict[str, Any]:
    sleep_ms = int(run.payload.get("sleep_ms") or 0)
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    if run.payload.get("fail"):
        raise Problem("job-failed", "The ping was asked to fail.", status=500)
    return {"pong": True}
