"""Every job type, with the time limits its task runs under.

A running job's lease is its hard time limit plus a grace: after that, the job's worker is
presumed dead and the outbox relay publishes the job again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobType:
    name: str
    soft_time_limit: int
    time_limit: int

    def task_options(self) -> dict[str, Any]:
        return {"name": self.name, "soft_time_limit": self.soft_time_limit, "time_limit": self.time_limit}


JOB_TYPES: dict[str, JobType] = {
    jt.name: jt
    for jt in (
        JobType("system.ping", soft_time_limit=10, time_limit=15),
        JobType("availability.generate", soft_time_limit=600, time_limit=660),
        JobType("booking.create", soft_time_limit=20, time_limit=30),
        JobType("pricing.recalculate", soft_time_limit=2 * 3600, time_limit=2 * 3600 + 60),
        JobType("booking.cancel", soft_time_limit=20, time_limit=30),
        # Long jobs renew their lease with every progress report; the limits bound a whole run. A
        # message outliving the broker's visibility timeout is redelivered, finds the job leased
        # and is dropped, so it cannot start a second run.
        JobType("keys.rotate", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60),
    )
}


def job_type(name: str) -> JobType:
    return JOB_TYPES[name]
