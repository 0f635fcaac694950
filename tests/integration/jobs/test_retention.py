"""Finished jobs, their webhook deliveries and idempotency records are purged 30 days after they finished."""

from celery.schedules import crontab

from app import jobs
from app.services import retention, system
from app.unit_of_work import unit_of_work


def ping(stack, headers, key, **body):
    response = stack.client().post("/v1/system/ping", json=body, headers={**headers, "Idempotency-Key": key})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def finished_days_ago(stack, job_ids, days):
    stack.sql(
        "UPDATE jobs SET finished_at = now() - make_interval(days => %s), created_at = now() - make_interval("
        "days => %s) WHERE id::text = ANY(%s)",
        (days, days + 1, job_ids),
    )


def remaining(stack, table, job_ids):
    return stack.sql(f"SELECT count(*) FROM {table} WHERE job_id::text = ANY(%s)", (job_ids,))[0][0]  # noqa: S608


def test_the_nightly_purge_deletes_finished_jobs_after_thirty_days(isolated_stack, httpserver):
    stack = isolated_stack
    user = stack.create_user()
    headers = stack.login(user)
    stack.client().get("/v1/me/webhook-secret", headers=headers)
    hook = httpserver.url_for("/hook")
    old = [ping(stack, headers, f"old-{i}", callback_url=hook) for i in range(5)]
    recent = [ping(stack, headers, f"recent-{i}", callback_url=hook) for i in range(2)]
    unfinished = ping(stack, headers, "unfinished")
    with stack.context():
        for job_id in old + recent:
            jobs.execute(job_id, "system.ping", system.ping)
    finished_days_ago(stack, old, 31)
    finished_days_ago(stack, recent, 29)
    stack.sql("UPDATE jobs SET created_at = now() - interval '60 days' WHERE id = %s", (unfinished,))
    assert remaining(stack, "webhook_deliveries", old) == 5
    assert remaining(stack, "idempotency_keys", old) == 5

    with stack.context():
        with unit_of_work():
            purged = retention.purge_finished_jobs(batch=2)  # several batches
        with unit_of_work():
            again = retention.purge_finished_jobs(batch=2)

    assert purged == {"jobs": 5, "webhook_deliveries": 5, "idempotency_keys": 5}
    assert again == {"jobs": 0, "webhook_deliveries": 0, "idempotency_keys": 0}, "idempotent"
    kept = stack.sql("SELECT id::text FROM jobs WHERE owner_user_id = %s", (user["id"],))
    assert {row[0] for row in kept} == {*recent, unfinished}
    assert remaining(stack, "webhook_deliveries", old) == remaining(stack, "idempotency_keys", old) == 0
    assert remaining(stack, "webhook_deliveries", recent) == 2
    # The audit trail keeps naming the purged jobs: it is append-only.
    audits = stack.sql("SELECT count(*) FROM audit_logs WHERE action = 'job.submitted' AND entity_id = ANY(%s)", (old,))
    assert audits[0][0] == 5


def test_the_purge_is_scheduled_nightly_on_the_system_queue(stack):
    celery = stack.app.extensions["celery"]
    entry = celery.conf.beat_schedule["jobs.purge_finished"]
    assert entry["task"] == "jobs.purge_finished"
    assert isinstance(entry["schedule"], crontab) and entry["schedule"].hour == {7}
    assert celery.amqp.router.route({}, "jobs.purge_finished")["queue"].name == "system"
