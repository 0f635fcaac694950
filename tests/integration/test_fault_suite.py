"""The fault suite's CI-sized part: ``python -m tests.chaos --ci`` (every scenario) as one subprocess.

The suite starts a stack of its own on embedded servers of its own (never the session's: it stops
PostgreSQL, SIGKILLs Redis, kills worker children, stops and doubles beat), puts bookings and pings
on it through each fault and must pass every check of every scenario (``tests/chaos/verdict.py``):
no 500, nothing lost, nothing run twice, one live booking per block, every accepted job terminal,
recovery within the scenario's deadline, no process died, and proof that the fault really happened.
"""

import json
import os
import signal
import socket
import subprocess

import pytest

from tests.chaos.scenarios import SCENARIOS
from tests.support.stack import BIN, ROOT

pytestmark = pytest.mark.slow

#: Every scenario reports these (a check that silently disappeared would otherwise go unnoticed).
COMMON_CHECKS = {
    "no_500",
    "no_unanswered",
    "no_hang",
    "none_lost",
    "none_ran_twice",
    "one_live_booking_per_block",
    "one_booking_per_successful_job",
    "all_terminal",
    "all_submitted",
    "recovered_in_time",
    "processes_alive",
}
#: And each its proof that the fault happened.
FAULT_CHECKS = {
    "postgres-stop": {
        "booking_in_flight_at_stop",
        "postgres_was_down",
        "readyz_names_postgres",
        "postgres_back",
        "in_flight_jobs_finished_once",
    },
    "redis-restart-empty": {"readyz_names_redis", "redis_restarted_empty", "queued_messages_lost"},
    "worker-children-killed": {"booking_in_flight_killed", "in_flight_jobs_finished_once"},
    "beat-stopped": {"beat_was_stopped"},
    "two-beats": {"both_beats_sent_the_relay"},
}


def _run_suite(argv: list[str], *, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run``, but an overrun gets SIGTERM first: the suite then stops its processes
    and servers (a SIGKILL would orphan them), and the test fails with what it printed."""
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(f"the fault suite overran {timeout:.0f}s\n{stdout}\n{stderr[-6000:]}")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(540)
def test_every_fault_scenario_recovers_with_nothing_lost_or_run_twice(tmp_path):
    results = tmp_path / "chaos.json"
    # Its servers are its own whatever the environment says; drop the session's URLs all the same.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    run = _run_suite(
        [str(BIN / "python"), "-m", "tests.chaos", "--ci", "--results", str(results)], env=env, timeout=400
    )
    report = f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-6000:]}"
    document = json.loads(results.read_text())
    assert document["error"] is None, report
    scenarios = {s["scenario"]: s for s in document["scenarios"]}
    assert list(scenarios) == [s.name for s in SCENARIOS], report
    failed = {name: [c for c, ok in s["checks"].items() if not ok] for name, s in scenarios.items() if not s["passed"]}
    assert not failed, f"failed checks: {failed}\n{report}"
    assert run.returncode == 0 and document["all_passed"] is True, report

    for name, scenario in scenarios.items():
        assert set(scenario["checks"]) == COMMON_CHECKS | FAULT_CHECKS[name], (name, sorted(scenario["checks"]))
        assert scenario["http_500"] == 0 and scenario["unanswered"] == 0, (name, scenario["answers"])
        assert scenario["lost"] == 0 and scenario["ran_twice"] == 0, (name, scenario["details"])
        assert scenario["accepted"] > 0 and scenario["finished"] == scenario["accepted"], name
        assert scenario["details"]["bookings_succeeded"] > 0 and scenario["details"]["accepted_pings"] > 0, name
        assert scenario["recovery_s"] is not None and scenario["recovery_s"] <= scenario["deadline_s"], name
        assert name in run.stdout  # the table lists it

    # It cleaned up after itself: nothing listens on its servers' ports any more.
    stack = document["stack"]
    assert not _listening(stack["postgres_port"]) and not _listening(stack["redis_port"]), stack
