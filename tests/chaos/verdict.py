"""A scenario's verdict: what the clients saw, what the database says, and the checks.

Read from the database (never from the API alone), after every accepted job is terminal or past its
deadline:

- lost: an accepted job (202) that is not terminal by ``max(fault end, its acceptance) + deadline``;
- ran twice: any booking effect applied twice: a booking job with more than one ``booking.created``
  audit row (the service writes exactly one per booking, in the job's transaction), a block with
  more than one live booking or more than one winning job, more bookings on the scenario's blocks
  than jobs that succeeded, a failed job that left a booking, or more jobs owned by the load's
  residents than Idempotency-Keys that created one (a retried POST that created a second job);
- recovery: from the fault's end until the API answered an authenticated request with 200 again and
  every operation the clients had started by then had its job terminal (plus the scenario's own
  signal, e.g. the relay ran again).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.chaos.faults import Fault
from tests.chaos.load import TERMINAL, Accepted, Load, Recorder
from tests.chaos.stack import ChaosStack


@dataclass
class Row:
    scenario: str
    summary: str
    hold_s: float
    deadline_s: float
    fault_s: float | None = None
    during_fault: dict[str, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    http_500: int = 0
    unanswered: int = 0
    hung: int = 0
    accepted: int = 0
    finished: int = 0
    lost: int = 0
    ran_twice: int = 0
    reruns: int = 0
    recovery_s: float | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(self.checks.values())

    def failed_checks(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class JobState:
    type: str
    status: str
    attempts: int
    finished_at: float | None


def job_states(stack: ChaosStack, ids: list[str]) -> dict[str, JobState]:
    rows = stack.sql_retry(
        "SELECT id::text, type, status, attempts, extract(epoch FROM finished_at)::float8"
        " FROM jobs WHERE id = ANY(%s::uuid[])",
        (ids,),
    )
    return {r[0]: JobState(r[1], r[2], int(r[3]), r[4]) for r in rows}


def judge(
    stack: ChaosStack,
    row: Row,
    fault: Fault,
    load: Load,
    *,
    window_start: float,
    api_back_at: float | None,
    probe_at: float | None,
    user_ids: list[str],
    dead: list[str],
    relogins_before: int = 0,
) -> Row:
    fault_end = fault.ended_at or fault.started_at or window_start
    accepted = load.accepted
    ids = [a.job_id for a in accepted]
    states = job_states(stack, ids)

    # --- what the clients saw --------------------------------------------------------------------
    everything = load.recorder.between(window_start, float("inf"))
    during = load.recorder.between(fault.started_at or fault_end, fault_end)
    row.fault_s = round(fault_end - fault.started_at, 2) if fault.started_at else None
    row.during_fault = Recorder.by_status(during)
    row.answers = Recorder.by_status(everything)
    row.http_500 = sum(1 for a in everything if isinstance(a.status, int) and a.status >= 500 and a.status != 503)
    row.unanswered = sum(1 for a in everything if a.status == "no-answer")
    row.hung = sum(1 for a in everything if a.hung)

    # --- jobs ---------------------------------------------------------------------------------------
    def deadline_of(a: Accepted) -> float:
        return max(fault_end, a.accepted_at) + row.deadline_s

    terminal = {i for i, s in states.items() if s.status in TERMINAL}
    lost = [
        a.job_id
        for a in accepted
        if a.job_id not in terminal or (states[a.job_id].finished_at or 0) > deadline_of(a)  # type: ignore[operator]
    ]
    row.accepted = len(set(ids))
    row.finished = len(terminal)
    row.lost = len(lost)
    row.reruns = sum(1 for s in states.values() if s.attempts > 1)

    # --- effects --------------------------------------------------------------------------------------
    bookings = [a for a in accepted if a.kind == "booking"]
    booking_ids = [a.job_id for a in bookings]
    audits = dict(
        stack.sql_retry(
            "SELECT metadata->>'job_id', count(*) FROM audit_logs"
            " WHERE action = 'booking.created' AND metadata->>'job_id' = ANY(%s) GROUP BY 1",
            (booking_ids,),
        )
    )
    succeeded = [a for a in bookings if states.get(a.job_id) and states[a.job_id].status == "succeeded"]
    failed = [a for a in bookings if states.get(a.job_id) and states[a.job_id].status == "failed"]
    doubled = [a.job_id for a in bookings if audits.get(a.job_id, 0) > 1]
    missing_effect = [a.job_id for a in succeeded if audits.get(a.job_id, 0) == 0]
    failed_with_effect = [a.job_id for a in failed if audits.get(a.job_id, 0) > 0]
    winners = Counter(a.block_id for a in succeeded)
    blocks = sorted({a.block_id for a in bookings if a.block_id})
    block_rows = stack.sql_retry(
        "SELECT b.id::text, b.status, count(k.id) FILTER (WHERE k.status <> 'cancelled'), count(k.id)"
        " FROM availability_blocks b LEFT JOIN bookings k ON k.block_id = b.id"
        " WHERE b.id = ANY(%s::uuid[]) GROUP BY b.id, b.status",
        (blocks,),
    )
    live_twice = [b for b, _, live, _ in block_rows if live > 1]
    many_winners = [b for b, n in winners.items() if n > 1]
    wrong_blocks = [
        b
        for b, status, live, _ in block_rows
        if live != (1 if winners.get(b) else 0) or (status == "reserved") != (live == 1)
    ]
    extra_bookings = max(0, sum(int(total) for *_, total in block_rows) - len(succeeded))
    ((in_window,),) = stack.sql_retry(
        "SELECT count(*) FROM jobs WHERE owner_user_id = ANY(%s::uuid[]) AND created_at >= to_timestamp(%s)",
        (user_ids, window_start),
    )
    ((keyed,),) = stack.sql_retry(
        "SELECT count(DISTINCT job_id) FROM idempotency_keys"
        " WHERE user_id = ANY(%s::uuid[]) AND left(key, %s) = %s AND job_id IS NOT NULL",
        (user_ids, len(load.prefix) + 1, load.prefix + "-"),
    )
    extra_jobs = max(0, int(in_window) - int(keyed))
    row.ran_twice = (
        len(doubled) + len(live_twice) + len(many_winners) + extra_bookings + len(failed_with_effect) + extra_jobs
    )

    # --- recovery -------------------------------------------------------------------------------------
    started_by_end = [a for a in accepted if a.first_try_at <= fault_end]
    times: list[float | None] = [
        api_back_at,
        *(states[a.job_id].finished_at if a.job_id in terminal else None for a in started_by_end),
    ]
    if fault.recovered_probe is not None:
        times.append(probe_at)
    if not load.abandoned and all(t is not None for t in times):
        row.recovery_s = round(max(0.0, max(t for t in times if t is not None) - fault_end), 2)

    pings = [a for a in accepted if a.kind == "ping"]
    row.checks = {
        "no_500": row.http_500 == 0,
        "no_unanswered": row.unanswered == 0,
        "no_hang": row.hung == 0,
        "none_lost": row.lost == 0,
        "none_ran_twice": row.ran_twice == 0,
        "one_live_booking_per_block": not wrong_blocks and len(block_rows) == len(blocks),
        "one_booking_per_successful_job": not missing_effect and not doubled,
        "all_terminal": len(terminal) == row.accepted,
        "all_submitted": not load.abandoned and not load.unexpected_answers and bool(succeeded) and bool(pings),
        "recovered_in_time": row.recovery_s is not None and row.recovery_s <= row.deadline_s,
        "processes_alive": not dead,
        **fault.proof,
    }
    in_flight = fault.details.get("in_flight_jobs")
    if in_flight:
        # The jobs the fault caught in a worker's hands: each terminal, its booking made at most once.
        caught = job_states(stack, in_flight)
        caught_audits = dict(
            stack.sql_retry(
                "SELECT metadata->>'job_id', count(*) FROM audit_logs"
                " WHERE action = 'booking.created' AND metadata->>'job_id' = ANY(%s) GROUP BY 1",
                (in_flight,),
            )
        )
        row.checks["in_flight_jobs_finished_once"] = len(caught) == len(in_flight) and all(
            s.status in TERMINAL
            and caught_audits.get(i, 0) == (1 if s.status == "succeeded" and s.type == "booking.create" else 0)
            for i, s in caught.items()
        )
        row.details["in_flight_outcomes"] = {
            i: {"type": s.type, "status": s.status, "attempts": s.attempts, "bookings": caught_audits.get(i, 0)}
            for i, s in caught.items()
        }
    row.details.update(
        fault=fault.details,
        accepted_bookings=len(bookings),
        accepted_pings=len(pings),
        contended_bookings=sum(1 for a in bookings if a.contended),
        bookings_succeeded=len(succeeded),
        bookings_failed=len(failed),
        blocks=len(blocks),
        relogins=load.accounts.logins - relogins_before,
        abandoned=load.abandoned[:10],
        unexpected=load.unexpected_answers[:10],
        lost_jobs=lost[:10],
        lost_by_status=dict(Counter(states[i].status if i in states else "missing" for i in lost)),
        ran_twice_parts={
            "audit_doubled": doubled[:10],
            "blocks_live_twice": live_twice[:10],
            "blocks_many_winners": many_winners[:10],
            "extra_bookings": extra_bookings,
            "failed_with_booking": failed_with_effect[:10],
            "jobs_without_their_key": extra_jobs,
        },
        wrong_blocks=wrong_blocks[:10],
        missing_effect=missing_effect[:10],
        api_back_after_s=None if api_back_at is None else round(api_back_at - fault_end, 2),
        dead_processes=dead,
        slowest_answer_s=round(max((a.seconds - a.wait for a in everything), default=0.0), 2),
    )
    return row
