"""The scenario list. It is data: a new fault is one function in ``faults.py`` and one entry here.

``hold`` is how long the fault lasts (full run, CI-sized run). ``deadline`` is, from the stack's
own recovery clocks (``Timers``: republish delay, relay interval, lease), how long after the
fault's end (or after its acceptance, if later) every accepted job must be terminal; a job that is
not is counted lost, and the whole scenario must have recovered within it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.chaos import faults
from tests.chaos.stack import Timers

#: Issue 10: work in flight when the database failed resumes "within about 10 s of its return";
#: twice that, on two shared cores under load.
PROMPT_RESUME_S = 20.0
#: Room for a loaded 2-core machine on top of the stack's own clocks.
SLACK_S = 15.0


@dataclass(frozen=True)
class Sized:
    full: float
    ci: float

    def pick(self, ci: bool) -> float:
        return self.ci if ci else self.full


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    inject: Callable[[faults.Fault], None]
    hold: Sized
    deadline: Callable[[Timers], float]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "postgres-stop",
        "pg_ctl stop -m immediate under load; started again after the hold",
        faults.postgres_stop,
        hold=Sized(full=10, ci=3),
        deadline=lambda t: PROMPT_RESUME_S,
    ),
    Scenario(
        "redis-restart-empty",
        "Redis SIGKILLed under load; started again, empty, after the hold",
        faults.redis_restart_empty,
        hold=Sized(full=5, ci=3),
        # Messages queued in Redis are gone: the relay publishes their jobs again.
        deadline=lambda t: t.republish_s + 2 * t.relay_s + SLACK_S,
    ),
    Scenario(
        "worker-children-killed",
        "every worker's pool children SIGKILLed while a booking runs on one (rounds over the hold)",
        faults.worker_children_killed,
        hold=Sized(full=9, ci=1),
        # The killed jobs' leases must run out before the relay hands them to another child.
        deadline=lambda t: t.lease_s + 2 * t.relay_s + SLACK_S,
    ),
    Scenario(
        "beat-stopped",
        "beat stopped for the hold, then started again",
        faults.beat_stopped,
        hold=Sized(full=120, ci=5),
        deadline=lambda t: 2 * t.relay_s + SLACK_S,
    ),
    Scenario(
        "two-beats",
        "a second beat beside the first for the hold",
        faults.two_beats,
        hold=Sized(full=30, ci=5),
        deadline=lambda t: 2 * t.relay_s + SLACK_S,
    ),
)


def by_name() -> dict[str, Scenario]:
    return {s.name: s for s in SCENARIOS}
