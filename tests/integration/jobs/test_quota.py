"""No single user can flood the job queues: a quota of unfinished jobs, and no sleeping pings in production.

Each test has a stack of its own with no worker, so a user's jobs stay unfinished until the test runs them.
"""

import base64
import os
import secrets
import uuid

from sqlalchemy import event

from app import jobs
from app.extensions import db
from app.services import system
from app.services.audit import Actor
from app.unit_of_work import unit_of_work
from tests.support.fake_twilio import production_twilio_env


def ping(stack, headers, **body):
    return stack.client().post("/v1/system/ping", json=body, headers=headers)


def jobs_of(stack, user):
    return stack.sql("SELECT count(*) FROM jobs WHERE owner_user_id = %s", (user["id"],))[0][0]


def submitted_audits(stack, user):
    return stack.sql("SELECT count(*) FROM audit_logs WHERE action = 'job.submitted' AND actor_id = %s", (user["id"],))[
        0
    ][0]


def test_a_user_over_the_unfinished_job_quota_gets_429_and_nothing_is_created(isolated_stack_factory):
    stack = isolated_stack_factory(JOB_MAX_UNFINISHED_PER_USER="3")
    flooder, other = stack.create_user(), stack.create_user()
    headers = stack.login(flooder)
    accepted = [ping(stack, headers) for _ in range(3)]
    assert [r.status_code for r in accepted] == [202, 202, 202]

    refused = ping(stack, headers)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"].isdigit() and int(refused.headers["Retry-After"]) > 0
    problem = refused.get_json()
    assert problem["type"] == "/problems/rate-limited" and problem["status"] == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert jobs_of(stack, flooder) == 3, "a refused submit creates no job"
    assert submitted_audits(stack, flooder) == 3, "and no audit row"

    # Other users are not affected, and the quota frees up as jobs finish.
    assert ping(stack, stack.login(other)).status_code == 202
    with stack.context():
        jobs.execute(accepted[0].get_json()["job_id"], "system.ping", system.ping)
    assert ping(stack, headers).status_code == 202
    assert jobs_of(stack, flooder) == 4


def test_a_refused_submit_releases_its_idempotency_key(isolated_stack_factory):
    stack = isolated_stack_factory(JOB_MAX_UNFINISHED_PER_USER="1")
    user = stack.create_user()
    headers = stack.login(user)
    first = ping(stack, headers)
    assert first.status_code == 202
    keyed = {**headers, "Idempotency-Key": "over-quota-1"}
    assert ping(stack, keyed).status_code == 429
    with stack.context():
        jobs.execute(first.get_json()["job_id"], "system.ping", system.ping)
    retried = ping(stack, keyed)
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers


def test_system_jobs_are_exempt_from_the_quota(isolated_stack_factory):
    stack = isolated_stack_factory(JOB_MAX_UNFINISHED_PER_USER="1")
    with stack.context(), unit_of_work():
        ids = [jobs.submit("system.ping", {}, Actor.system())["job_id"] for _ in range(3)]
    assert stack.sql("SELECT count(*) FROM jobs WHERE id::text = ANY(%s)", (ids,))[0][0] == 3


def test_the_quota_costs_no_extra_statement(isolated_stack):
    """Accepting a job is still one statement that touches ``jobs`` (the quota is inside it)."""
    stack = isolated_stack
    headers = stack.login(stack.create_user())
    statements = []
    with stack.context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert ping(stack, headers).status_code == 202
    finally:
        event.remove(engine, "before_cursor_execute", record)
    touching_jobs = [s for s in statements if " jobs" in s]
    assert len(touching_jobs) == 1, touching_jobs
    assert "INSERT INTO jobs" in touching_jobs[0] and "LIMIT" in touching_jobs[0]


def production_overrides():
    """A production environment for an isolated stack: real-looking keys (no ``dev`` marker)."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
        **production_twilio_env(),
    }


def test_a_sleeping_ping_is_refused_in_production_and_creates_nothing(isolated_stack_factory):
    stack = isolated_stack_factory(**production_overrides())
    assert stack.settings.is_production
    user = stack.create_user()
    headers = stack.login(user)
    refused = ping(stack, headers, sleep_ms=1)
    assert refused.status_code == 422
    assert refused.get_json()["type"] == "/problems/validation-error"
    assert [e["pointer"] for e in refused.get_json()["errors"]] == ["/sleep_ms"]
    assert jobs_of(stack, user) == 0

    assert ping(stack, headers, sleep_ms=0).status_code == 202, "a ping that does not sleep is fine"
    assert ping(stack, headers).status_code == 202
    assert jobs_of(stack, user) == 2


def test_a_sleeping_ping_is_accepted_outside_production(isolated_stack):
    stack = isolated_stack
    user = stack.create_user()
    accepted = ping(stack, stack.login(user), sleep_ms=5000)
    assert accepted.status_code == 202
    assert uuid.UUID(accepted.get_json()["job_id"])
