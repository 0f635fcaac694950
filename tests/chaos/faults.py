"""The faults, one function each: inject, hold, undo, and prove that it really happened.

A fault function receives a ``Fault``: it calls ``begin()`` when the fault lands and ``end()`` when the
stack has been given back what it lost (the server restarted, the pool respawned, beat running
again); the scenario's recovery is measured from ``end()``. It records in ``proof`` the evidence
that the fault was real (a suite that "survives" a fault that never happened proves nothing), and
may set ``recovered_probe``: a signal, beyond "the API answers and every job is terminal", that the
stack has recovered (e.g. the relay ran again after beat came back).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import requests

from tests.chaos.stack import ChaosStack

#: How long ``/readyz`` may take to say which dependency is down (issue 10: never a hang past 10 s).
READYZ_LIMIT_S = 10.0
#: A relay run, as the worker logs it (Celery's "Task <name>[<id>] succeeded in ...").
RELAY_SUCCEEDED = ("Task jobs.relay[", "succeeded")
#: Beat sending the relay.
BEAT_SENT_RELAY = ("Sending due task", "jobs.relay")
#: Messages that must be waiting in the broker when Redis is killed.
QUEUED_AT_KILL = 3


@dataclass
class Fault:
    stack: ChaosStack
    hold_s: float
    started_at: float | None = None
    ended_at: float | None = None
    proof: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: Returns the wall time at which the stack showed it had recovered, or None while it has not.
    recovered_probe: Callable[[], float | None] | None = None

    def begin(self) -> None:
        self.started_at = time.time()

    def end(self) -> None:
        self.ended_at = time.time()

    def readyz_names(self, dependency: str) -> None:
        """``/readyz`` answers 503 within 10 s and names ``dependency`` as the one that is down."""
        began = time.monotonic()
        try:
            response = requests.get(f"{self.stack.api_url}/readyz", timeout=READYZ_LIMIT_S + 5)
            status, body = response.status_code, response.json() if response.content else {}
        except (requests.RequestException, ValueError) as exc:
            status, body = type(exc).__name__, {}
        seconds = round(time.monotonic() - began, 2)
        self.details["readyz_during_fault"] = {"status": status, "body": body, "seconds": seconds}
        checks = body.get("checks", {}) if isinstance(body, dict) else {}
        self.proof[f"readyz_names_{dependency}"] = (
            status == 503 and checks.get(dependency) not in (None, "ok") and seconds <= READYZ_LIMIT_S
        )


def postgres_stop(fault: Fault) -> None:
    """``pg_ctl stop -m immediate`` (every backend killed, no checkpoint) while a booking is running,
    the hold, then a restart.

    "While a booking is running" is made certain: the pools are frozen the moment the database
    shows a booking ``running`` (claimed, in a child's hands), PostgreSQL is stopped, and the
    children are thawed into a dead connection, as a crash in the middle of the job would leave them.
    """
    stack = fault.stack
    pids, running = freeze_when(stack, lambda: _running_jobs(stack, set()))
    fault.begin()
    try:
        stack.stop_postgres("immediate")
    finally:
        stack.signal_all(pids, signal.SIGCONT)
    fault.details["in_flight_jobs"] = running or []
    fault.proof["booking_in_flight_at_stop"] = bool(running)
    fault.proof["postgres_was_down"] = not stack.postgres_up()
    fault.readyz_names("postgres")
    time.sleep(max(0.0, fault.hold_s - (time.time() - fault.started_at)))  # type: ignore[operator]
    stack.start_postgres()
    fault.end()
    fault.proof["postgres_back"] = stack.postgres_up()


def redis_restart_empty(fault: Fault) -> None:
    """SIGKILL Redis (no shutdown, no save) with jobs waiting in its queues, the hold, then start it
    again with nothing in it.

    "With jobs waiting" is made certain: the pools are frozen until the API's publishes have left at
    least ``QUEUED_AT_KILL`` messages in the broker's queues (or 5 s pass), so the kill destroys
    accepted work that only the outbox relay can bring back.
    """
    stack = fault.stack
    marker = f"chaos:marker:{stack.run_id}"
    client = stack.redis()
    try:
        client.set(marker, "1")
        pids = [pid for group in stack.pool_children().values() for pid in group]
        stack.signal_all(pids, signal.SIGSTOP)
        try:
            queued = _await_queued(client, QUEUED_AT_KILL, timeout=5.0)
            fault.begin()
            old_pid = stack.kill_redis()
        finally:
            stack.signal_all(pids, signal.SIGCONT)
    finally:
        client.close()
    fault.readyz_names("redis")
    time.sleep(max(0.0, fault.hold_s - (time.time() - fault.started_at)))  # type: ignore[operator]
    new_pid = stack.start_redis()
    fault.end()
    client = stack.redis()
    try:
        emptied = client.exists(marker) == 0
    finally:
        client.close()
    fault.details.update(old_pid=old_pid, new_pid=new_pid, messages_lost=queued)
    fault.proof["redis_restarted_empty"] = new_pid != old_pid and emptied
    fault.proof["queued_messages_lost"] = queued > 0


def _queued_messages(client: Any) -> int:
    """Messages waiting in the broker's queues (kombu keeps each queue as a Redis list)."""
    total = 0
    for key in client.scan_iter(count=1000):
        if client.type(key) == b"list":
            total += int(client.llen(key))
    return total


def _await_queued(client: Any, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    queued = _queued_messages(client)
    while queued < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        queued = _queued_messages(client)
    return queued


def worker_children_killed(fault: Fault, kills: int = 0) -> None:
    """SIGKILL every worker's pool children while a booking is running on one of them.

    "While a booking is running" is made certain: the children are frozen the moment the database
    shows a booking ``running`` (``freeze_when``), then SIGKILLed. ``kills`` rounds (default: one per
    3 s of hold, at least one); the fault ends once every pool has respawned its children.
    """
    stack = fault.stack
    rounds = kills or max(1, int(fault.hold_s // 3))
    sizes = {name: len(pids) for name, pids in stack.pool_children().items()}
    killed: list[str] = []
    for round_ in range(rounds):
        if round_:
            time.sleep(fault.hold_s / rounds)
            stack.wait_for_pools(sizes)
        pids, running = freeze_when(stack, lambda: _running_jobs(stack, set(killed)))
        if fault.started_at is None:
            fault.begin()
        stack.signal_all(pids, signal.SIGKILL if running else signal.SIGCONT)
        killed.extend(running or [])
    stack.wait_for_pools(sizes)
    fault.end()
    fault.details.update(in_flight_jobs=killed, rounds=rounds, pool_sizes=sizes)
    fault.proof["booking_in_flight_killed"] = bool(killed)


def freeze_when(stack: ChaosStack, condition: Callable[[], Any], timeout: float = 20.0) -> tuple[list[int], Any]:
    """Freeze (SIGSTOP) every pool child; if ``condition()`` is then truthy, return with them still
    frozen (the caller thaws or kills them), else thaw them and try again a moment later."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid for group in stack.pool_children().values() for pid in group]
        stack.signal_all(pids, signal.SIGSTOP)
        found = condition()
        if found:
            return pids, found
        stack.signal_all(pids, signal.SIGCONT)
        time.sleep(0.05)
    return [], None


def _running_jobs(stack: ChaosStack, exclude: set[str]) -> list[str]:
    """Every job ``running`` now (claimed, so in a child's hands), if a booking is among them."""
    try:
        rows = stack.sql("SELECT id::text, type FROM jobs WHERE status = 'running'")
    except psycopg2.Error:
        return []
    running = [(i, t) for i, t in rows if i not in exclude]
    return [i for i, _ in running] if any(t == "booking.create" for _, t in running) else []


def beat_stopped(fault: Fault) -> None:
    """Stop beat (SIGTERM), keep it stopped for the hold, start it again; recovered when the relay
    has run again."""
    stack = fault.stack
    fault.begin()
    began = time.monotonic()
    for beat in list(stack.beats):
        stack.stop_beat(beat)
    stopped = time.monotonic()
    fault.proof["beat_was_stopped"] = not stack.beats
    time.sleep(fault.hold_s)
    offsets = stack.log_offsets(list(stack.workers.values()))
    restarting = time.monotonic()
    stack.start_beat()
    fault.end()
    fault.details.update(
        stop_s=round(stopped - began, 2),
        down_s=round(time.monotonic() - began, 2),
        start_s=round(time.monotonic() - restarting, 2),
    )
    fault.recovered_probe = _relay_ran_after(stack, offsets)


def two_beats(fault: Fault) -> None:
    """A second beat (another deployment's, its own schedule file) beside the first for the hold."""
    stack = fault.stack
    first = stack.beats[0]
    offsets = stack.log_offsets([first])
    second = stack.start_beat()
    fault.begin()
    time.sleep(fault.hold_s)
    sent = {
        "first": stack.log_lines_since([first], offsets, BEAT_SENT_RELAY),
        "second": stack.log_lines_since([second], {}, BEAT_SENT_RELAY),
    }
    stopping = time.monotonic()
    stack.stop_beat(second)
    fault.end()
    fault.details.update(relay_sends_during_overlap=sent, stop_s=round(time.monotonic() - stopping, 2))
    fault.proof["both_beats_sent_the_relay"] = sent["first"] > 0 and sent["second"] > 0


def _relay_ran_after(stack: ChaosStack, offsets: dict[str, int]) -> Callable[[], float | None]:
    seen: list[float] = []

    def probe() -> float | None:
        if not seen:
            with contextlib.suppress(OSError):
                if stack.log_lines_since(list(stack.workers.values()), offsets, RELAY_SUCCEEDED):
                    seen.append(time.time())
        return seen[0] if seen else None

    return probe
