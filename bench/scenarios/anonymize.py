"""``anonymize``: one bulk ``gdpr.anonymize`` job over 100,000 people against the set-based UPDATE
a DBA would write, the worker's peak RSS, and a SIGKILL halfway through a second job.

Data: three tenants, each an organization with one building, its org_admin (TOTP) and N residents
(100,000; ``--quick``: 2,000), every tenth of them with a past ``checked_out`` booking carrying
visitor data (name, phone, plate and its blind index), so the booking scrubber has work. The people
are made by ``python -m bench.seed people``: e-mail, names, RUT and phone encrypted with the run's
keyring and blind-indexed with its key in one Python loop, loaded with ``COPY``; their accounts were
created 400 days ago and nobody logged in since. One tenant is for the baseline, one for the job,
one for the kill check: the three start from identical data.

Baseline: the users, residents and bookings scrub as three plain ``UPDATE`` statements over the
baseline tenant in one transaction (``BASELINE``), timed from the first ``execute`` to ``commit``.
It is the floor for the database work: one ciphertext for every "Anonymous" (encrypted once) and
random bytes for the new e-mail blind index, where the job encrypts and HMACs a fresh address per
person, writes an audit row and an event per person, revokes sessions in Redis and scrubs the nine
other stores (jobs, notifications, webhook deliveries, idempotency keys, recovery codes, blocklist,
access events, audit rows).

Figure: ``POST /v1/admin/anonymizations {"inactive_since"}`` by the job tenant's org_admin (the API
caps ``user_ids`` at 1,000, so a bulk erasure of this size is asked for by inactivity), long-polled
to terminal on the stack's production worker; users/s = N / (POST to terminal). Ratio figure /
baseline, higher is better (``TARGET``: the issue names none; 0.1 means within 10x of the floor).
The worker's process group's RSS is sampled from ``/proc`` every 50 ms: its largest process must
stay < 300 MB. The people's ``user.anonymized`` events are handed to the bus by the event relay
(beat), which no measured phase runs: their fan-out is not part of the figure.

Kill check: the same request over the kill tenant, on a worker whose job lease is
``KILL_LEASE_SECONDS`` (production: 60 s; shorter so the takeover happens in seconds) and no beat.
Once the job's committed ``progress.done`` reaches half its total, the worker's whole process group
is SIGKILLed; a successor worker and beat (whose relay re-publishes a job whose lease expired) are
started, and the job must finish with every person anonymized exactly once.

Checks (SQL): each job succeeded with ``{"anonymized": N, "skipped": 0}`` and ``progress`` N/N; every
person of its tenant carries its ``anonymized_by_job``, has no RUT, phone or blind indexes left and
is inactive; every seeded booking of the tenant lost its visitor data and kept its amounts; exactly
one ``user.anonymized`` audit row and one event per person (none twice); the baseline scrubbed the
same counts; the kill came at or after half and before the end, the job took two attempts and its
successor resumed from the checkpoint (its ``anonymization resumed`` line, ``done`` >= the kill's).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.client import Api
from bench.cpu import CpuSampler, describe
from bench.memory import RssSampler
from bench.report import Figure, ScenarioResult, Target
from bench.scenarios import ScenarioContext
from bench.stack import BIN, BenchError, BenchStack, Child, say
from bench.tenant import Tenant, add_blocks, add_spots, login_staff, seed_tenant

NAME = "anonymize"
ORDER = 9
DESCRIPTION = "one gdpr.anonymize job over 100,000 people vs a set-based UPDATE; worker RSS; SIGKILL halfway"
#: users/s of the job over users/s of the baseline; the issue sets no ratio (see the README).
TARGET = 0.1
RSS_TARGET_MB = 300.0
USERS = {"full": 100_000, "quick": 2_000}
BOOKING_EVERY = 10
#: Spots of each tenant's building; its past blocks (two a day) hold the bookings.
SPOTS = 100
CREATED_DAYS_AGO = 400
INACTIVE_FOR_DAYS = 30
JOB_TIMEOUT_S = 3600.0
#: The kill check's job lease (and relay timers): a dead worker's job is taken over this soon.
KILL_OVERRIDES = {"JOB_LEASE_SECONDS": "5", "RELAY_INTERVAL_SECONDS": "1", "JOB_REPUBLISH_AFTER_SECONDS": "2"}
PATH = "/v1/admin/anonymizations"

#: The baseline: the same three tables scrubbed by hand, set-based, for one building's residents.
BASELINE = (
    """
    UPDATE bookings k SET visitor_name_encrypted = %(visitor)s, visitor_phone_encrypted = NULL,
           vehicle_plate_encrypted = NULL, plate_bidx = NULL, updated_at = now()
    FROM residents r WHERE k.resident_id = r.id AND r.building_id = %(building)s
    """,
    """
    UPDATE residents SET first_name_encrypted = %(first)s, last_name_encrypted = %(last)s,
           rut_encrypted = NULL, rut_bidx = NULL, phone_encrypted = NULL, phone_bidx = NULL, updated_at = now()
    WHERE building_id = %(building)s
    """,
    """
    UPDATE users u SET email_encrypted = %(email)s, email_bidx = uuid_send(gen_random_uuid()),
           password_hash = NULL, is_active = false, webhook_secret_encrypted = NULL, mfa_enabled = false,
           mfa_secret_encrypted = NULL, mfa_pending_secret_encrypted = NULL, mfa_last_step = NULL,
           anonymized_at = now(), updated_at = now()
    FROM residents r WHERE r.user_id = u.id AND r.building_id = %(building)s
    """,
)

_SCRUBBED = """
    SELECT count(*),
           count(*) FILTER (WHERE u.anonymized_by_job = %(job)s),
           count(*) FILTER (WHERE r.rut_encrypted IS NULL AND r.rut_bidx IS NULL AND r.phone_encrypted IS NULL
                            AND r.phone_bidx IS NULL AND u.password_hash IS NULL AND NOT u.is_active),
           (SELECT count(*) FROM bookings k WHERE k.building_id = %(building)s),
           (SELECT count(*) FROM bookings k WHERE k.building_id = %(building)s AND k.vehicle_plate_encrypted IS NULL
                   AND k.plate_bidx IS NULL AND k.visitor_phone_encrypted IS NULL AND k.price_clp = k.base_price_clp
                   AND k.status = 'checked_out')
    FROM residents r JOIN users u ON u.id = r.user_id
    WHERE r.building_id = %(building)s
"""

#: Audit rows and events per person of the building: (people with any, people with more than one).
_ONCE = """
    WITH people AS (SELECT user_id FROM residents WHERE building_id = %(building)s),
    audited AS (
        SELECT a.entity_id, count(*) AS n FROM audit_logs a JOIN people p ON a.entity_id = p.user_id::text
        WHERE a.action = 'user.anonymized' AND a.entity_type = 'user' GROUP BY a.entity_id
    ),
    emitted AS (
        SELECT e.data->>'user_id' AS user_id, count(*) AS n
        FROM events e JOIN people p ON e.data->>'user_id' = p.user_id::text
        WHERE e.type = 'user.anonymized' GROUP BY 1
    )
    SELECT (SELECT count(*) FROM audited), (SELECT count(*) FROM audited WHERE n > 1),
           (SELECT count(*) FROM emitted), (SELECT count(*) FROM emitted WHERE n > 1)
"""


def run(ctx: ScenarioContext) -> ScenarioResult:
    stack = ctx.stack
    people = ctx.size(USERS["full"], USERS["quick"])
    began = time.perf_counter()
    tenants = {role: seed_tenant(stack, f"anonymize {role}", staff=True) for role in ("baseline", "job", "kill")}
    seeded = {role: _seed_people(stack, tenant, people, index) for index, (role, tenant) in enumerate(tenants.items())}
    seed_s = time.perf_counter() - began
    say(f"anonymize: seeded 3 x {people:,} people in {seed_s:.1f} s ({seeded['job']})")
    since = (datetime.now(UTC) - timedelta(days=INACTIVE_FOR_DAYS)).date().isoformat()
    stack.settle("users", "residents", "bookings")

    say("anonymize: baseline, three set-based UPDATEs")
    baseline_s, baseline_rows = _baseline(stack, tenants["baseline"].building)
    say(f"anonymize: baseline {baseline_s:.2f} s, rows {baseline_rows}")

    say("anonymize: figure, one gdpr.anonymize job")
    stack.settle("users", "residents", "bookings")
    with stack.running("api", "app_worker"):
        api = Api(stack.api_url or "")
        try:
            login_staff(api, tenants["job"])
            worker = stack.process_groups().get("worker")
            if worker is None:
                raise BenchError("the Celery worker is not running")
            with RssSampler(worker) as idle:
                time.sleep(0.3)
            sampler = CpuSampler(stack.process_groups())
            with RssSampler(worker) as rss, ctx.profiled(NAME):
                started = time.perf_counter()
                job = api.submit_and_await(PATH, {"inactive_since": since}, timeout=JOB_TIMEOUT_S)
                figure_s = time.perf_counter() - started
            figure_cpu = sampler.cores()
        finally:
            api.close()
    memory = rss.summary()
    say(
        f"anonymize: figure {figure_s:.2f} s ({people / figure_s:,.0f} users/s),"
        f" peak RSS {memory['peak_process_mb']} MB"
    )

    say("anonymize: kill check, SIGKILL halfway")
    kill = _kill_check(stack, tenants["kill"], since)

    job_sql = _state(stack, tenants["job"].building, job["id"])
    kill_sql = _state(stack, tenants["kill"].building, kill["job"]["id"])
    bookings = seeded["job"]["bookings"]
    expected = {"anonymized": people, "skipped": 0}
    checks = {
        "job_succeeded": job["status"] == "succeeded" and job.get("attempts") == 1 and job.get("result") == expected,
        "every_person_anonymized_by_the_job": job_sql["people"] == people == job_sql["by_job"] == job_sql["scrubbed"],
        "bookings_scrubbed_amounts_kept": job_sql["bookings"] == bookings == job_sql["bookings_scrubbed"] > 0,
        "audit_and_event_once_per_person": _exactly_once(job_sql, people),
        "baseline_scrubbed_the_same": baseline_rows == {"users": people, "residents": people, "bookings": bookings},
        "rss_sampled": memory["samples"] > 0 or not rss.available,
        "killed_halfway": people / 2 <= kill["done_at_kill"] < people,
        "kill_job_succeeded_after_takeover": kill["job"]["status"] == "succeeded"
        and kill["job"].get("attempts") == 2
        and kill["job"].get("result") == expected
        and kill["job"].get("progress") == {"done": people, "total": people},
        "kill_resumed_from_checkpoint": kill["resumed_at"] is not None and kill["resumed_at"] >= kill["done_at_kill"],
        "kill_everyone_anonymized_exactly_once": kill_sql["by_job"] == people == kill_sql["scrubbed"]
        and _exactly_once(kill_sql, people),
    }
    return ScenarioResult(
        scenario=NAME,
        figure=Figure.rate(
            f"one gdpr.anonymize job over {people:,} people, POST to terminal", "users/s", people, figure_s
        ),
        baseline=Figure.rate(
            f"three set-based UPDATEs (users, residents, bookings) of {people:,} people", "users/s", people, baseline_s
        ),
        target=TARGET,
        higher_is_better=True,
        extra_targets=[Target("worker peak RSS", memory["peak_process_mb"], "MB", "<", RSS_TARGET_MB)],
        checks=checks,
        details={
            "people": people,
            "bookings_per_tenant": bookings,
            "seed": seeded,
            "seed_seconds": round(seed_s, 1),
            "baseline_seconds": round(baseline_s, 3),
            "baseline_rows": baseline_rows,
            "job_seconds": round(figure_s, 3),
            "job": _brief(job),
            "job_sql": job_sql,
            "worker_rss_mb": {"idle": idle.summary(), "during_job": memory},
            "cpu_cores_used": {"figure": figure_cpu},
            "kill": {**kill, "job": _brief(kill["job"])},
            "kill_sql": kill_sql,
        },
        notes=[
            f"job {figure_s:.1f} s, baseline {baseline_s:.2f} s for {people:,} people ({bookings:,} bookings)",
            f"worker RSS: idle {idle.summary()['peak_process_mb']} MB, peak during the job "
            f"{memory['peak_process_mb']} MB per process, {memory['peak_group_mb']} MB for the whole worker",
            f"kill: SIGKILL at {kill['done_at_kill']:,}/{people:,}, successor resumed at {kill['resumed_at']}, "
            f"job done {kill['seconds']:.1f} s after the POST",
            f"CPU cores used, figure: {describe(figure_cpu)}",
        ],
    )


def _seed_people(stack: BenchStack, tenant: Tenant, count: int, index: int) -> dict[str, Any]:
    """Spots and past blocks set-based, then ``count`` residents (``bench.seed people``)."""
    building = tenant.building
    bookings = count // BOOKING_EVERY
    per_spot = -(-bookings // SPOTS) + 1
    add_spots(stack, building, SPOTS)
    add_blocks(stack, building, per_spot, first_day=-(per_spot // 2) - 2)
    ((unit,),) = stack.sql("SELECT id::text FROM units WHERE building_id = %s", (building,))
    argv = [str(BIN / "python"), "-m", "bench.seed", "people", "--building-id", building, "--unit-id", unit]
    argv += ["--count", str(count), "--rut-base", str(1_000_000 + index * count)]
    argv += ["--created-days-ago", str(CREATED_DAYS_AGO), "--booking-every", str(BOOKING_EVERY)]
    out = stack.run_python_tool(argv, f"seeding {count:,} people")
    return json.loads(out.strip().splitlines()[-1])


def _baseline(stack: BenchStack, building: str) -> tuple[float, dict[str, int]]:
    from app.security.keyring import Keyring

    keyring = Keyring.from_spec(stack.env["ENCRYPTION_KEYS"])
    params = {
        "building": building,
        "visitor": keyring.encrypt(b"Anonymous", "bookings.visitor_name"),
        "first": keyring.encrypt(b"Anonymous", "residents.first_name"),
        "last": keyring.encrypt(b"", "residents.last_name"),
        "email": keyring.encrypt(b"deleted-baseline@anonymized.invalid", "users.email"),
    }
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            began = time.perf_counter()
            rows = []
            for statement in BASELINE:
                cur.execute(statement, params)
                rows.append(int(cur.rowcount))
            conn.commit()
            return time.perf_counter() - began, dict(zip(("bookings", "residents", "users"), rows, strict=True))
    finally:
        conn.close()


def _kill_check(stack: BenchStack, tenant: Tenant, since: str) -> dict[str, Any]:
    """SIGKILL the worker once the job's committed progress reaches half; a successor finishes it."""
    with stack.running("api"):
        api = Api(stack.api_url or "")
        try:
            login_staff(api, tenant)
            doomed = stack.start_worker_with(KILL_OVERRIDES, "doomed")
            started = time.perf_counter()
            accepted = api.submit(PATH, {"inactive_since": since})
            done_at_kill = _kill_at_half(stack, doomed, accepted["job_id"])
            successor = stack.start_worker_with(KILL_OVERRIDES, "successor")
            beat = stack.start_beat_with(KILL_OVERRIDES)
            try:
                job = api.await_job(accepted["status_url"], timeout=JOB_TIMEOUT_S)
                seconds = time.perf_counter() - started
            finally:
                beat.stop()
                successor.stop()
        finally:
            api.close()
    resumed = [line for line in successor.json_lines() if line.get("message") == "anonymization resumed"]
    return {
        "done_at_kill": done_at_kill,
        "resumed_at": resumed[0].get("done") if len(resumed) == 1 else None,
        "resumed_lines": len(resumed),
        "seconds": round(seconds, 1),
        "job": job,
    }


def _kill_at_half(stack: BenchStack, worker: Child, job_id: str, timeout: float = JOB_TIMEOUT_S) -> int:
    deadline = time.monotonic() + timeout
    while True:
        ((done, total, status),) = stack.sql(
            "SELECT progress_done, progress_total, status FROM jobs WHERE id = %s", (job_id,)
        )
        if total and done is not None and done >= total / 2:
            worker.kill()  # the whole process group, SIGKILL: no cleanup at all
            ((at_kill,),) = stack.sql("SELECT progress_done FROM jobs WHERE id = %s", (job_id,))
            say(f"anonymize: SIGKILL at {at_kill}/{total}")
            return int(at_kill)
        if status in ("succeeded", "failed") or time.monotonic() > deadline:
            raise BenchError(f"the kill check's job reached {status} ({done}/{total}) before it could be killed")
        time.sleep(0.02)


def _state(stack: BenchStack, building: str, job_id: str) -> dict[str, int]:
    ((people, by_job, scrubbed, bookings, bookings_scrubbed),) = stack.sql(
        _SCRUBBED, {"building": building, "job": job_id}
    )
    ((audited, audited_twice, emitted, emitted_twice),) = stack.sql(_ONCE, {"building": building})
    values = (people, by_job, scrubbed, bookings, bookings_scrubbed, audited, audited_twice, emitted, emitted_twice)
    names = ("people", "by_job", "scrubbed", "bookings", "bookings_scrubbed")
    names += ("audited", "audited_twice", "emitted", "emitted_twice")
    return dict(zip(names, (int(v) for v in values), strict=True))


def _exactly_once(state: dict[str, int], people: int) -> bool:
    return state["audited"] == state["emitted"] == people and state["audited_twice"] == state["emitted_twice"] == 0


def _brief(job: dict[str, Any]) -> dict[str, Any]:
    return {key: job.get(key) for key in ("id", "status", "attempts", "result", "progress")}
