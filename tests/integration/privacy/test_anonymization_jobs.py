"""The bulk job's mechanics with real worker processes: SIGKILL mid-job, and the CLI's progress bar."""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.test_cli import on_a_terminal
from tests.support.world import build_tenant, make_residents

pytestmark = pytest.mark.slow


def people_of_a_fresh_tenant(stack, count):
    admin = stack.login(stack.create_user(role="platform_admin"))
    tenant = build_tenant(stack, admin, "Org Erase", ["E1"])
    return admin, make_residents(stack, tenant.buildings["E1"], count)


def test_a_worker_killed_halfway_is_taken_over_and_everyone_is_anonymized_exactly_once(isolated_stack_factory):
    stack = isolated_stack_factory(ANONYMIZATION_BATCH_SIZE="25")
    admin, people = people_of_a_fresh_tenant(stack, 400)
    first = stack.start_worker(concurrency=1, label="doomed")
    body = {"user_ids": [p["id"] for p in people]}
    accepted = stack.client().post("/v1/admin/anonymizations", json=body, headers=admin)
    assert accepted.status_code == 202, accepted.get_json()
    job_id = accepted.get_json()["job_id"]
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the job never made progress"
        ((done, total, status),) = stack.sql(
            "SELECT progress_done, progress_total, status FROM jobs WHERE id = %s", (job_id,)
        )
        if done and total and 0 < done < total:
            break
        assert status != "succeeded", "the job finished before it could be killed: raise the user count"
        time.sleep(0.01)
    first.kill()  # SIGKILL, mid-batch or between batches: no cleanup at all
    ((done_at_kill,),) = stack.sql("SELECT progress_done FROM jobs WHERE id = %s", (job_id,))
    assert 0 < done_at_kill < 400
    stack.start_worker(concurrency=1, label="successor")
    stack.start_beat()  # the relay re-publishes the job once the dead worker's lease expires
    job = stack.wait_job(admin, job_id, timeout=90)
    assert job["status"] == "succeeded", job
    assert job["result"] == {"anonymized": 400, "skipped": 0}
    assert job["progress"] == {"done": 400, "total": 400}
    ids = [p["id"] for p in people]
    assert stack.sql(
        "SELECT count(*) FROM users WHERE id = ANY(%s::uuid[]) AND anonymized_by_job = %s", (ids, job_id)
    ) == [(400,)]
    # Exactly once: one audit row and one event per person, though a batch may have been cut short.
    per_person = stack.sql(
        "SELECT entity_id, count(*) FROM audit_logs WHERE action = 'user.anonymized' GROUP BY entity_id"
    )
    assert len(per_person) == 400 and {n for _, n in per_person} == {1}
    events = stack.sql("SELECT data->>'user_id', count(*) FROM events WHERE type = 'user.anonymized' GROUP BY 1")
    assert len(events) == 400 and {n for _, n in events} == {1}
    # It resumed from its checkpoint, not from zero: the successor's first batch starts past the
    # killed worker's last commit (its "resumed" log line says where).
    ((attempts,),) = stack.sql("SELECT attempts FROM jobs WHERE id = %s", (job_id,))
    assert attempts == 2
    resumed = [line for line in stack.worker_lines() if line.get("message") == "anonymization resumed"]
    assert len(resumed) == 1 and resumed[0]["done"] >= done_at_kill


def test_the_cli_follows_the_job_with_a_progress_bar_to_the_end(isolated_stack_factory):
    stack = isolated_stack_factory(ANONYMIZATION_BATCH_SIZE="20")
    _, people = people_of_a_fresh_tenant(stack, 120)
    stack.start_worker(concurrency=1)
    args = ["gdpr", "anonymize", *[a for p in people for a in ("--user-id", p["id"])]]
    status, shown = on_a_terminal(stack, args, [], timeout=90)
    assert status == 0, shown
    positions = {int(n) for n in re.findall(r"(\d+)/120", shown)}
    assert 120 in positions and "anonymizing" in shown
    assert "anonymized 120, skipped 0" in shown
    again, shown_again = on_a_terminal(stack, args, [], timeout=90)
    assert again == 0 and "anonymized 0, skipped 120" in shown_again
    refused, said = on_a_terminal(stack, ["gdpr", "anonymize"], [], timeout=30)
    assert refused != 0 and "--user-id" in said


def test_availability_generation_from_the_cli_follows_its_jobs_to_the_end(isolated_stack_factory):
    stack = isolated_stack_factory()
    admin = stack.login(stack.create_user(role="platform_admin"))
    tenant = build_tenant(stack, admin, "Org Generate", ["G1"])
    stack.start_worker(concurrency=1)
    status, shown = on_a_terminal(stack, ["availability", "generate", "--building", tenant.buildings["G1"]], [])
    assert status == 0, shown
    assert "building 1/1" in shown and "1 jobs queued" in shown
    created = int(re.search(r"(\d+) blocks created", shown).group(1))
    assert created > 0
    blocks = stack.sql("SELECT count(*) FROM availability_blocks WHERE building_id = %s", (tenant.buildings["G1"],))
    assert blocks == [(created + 1,)]  # and the one made by hand
