"""Key rotation: rows written under k1; k2 added first; ``flask keys rotate``; only k2 remains in use."""

import base64
import os
import subprocess
import time

import pytest

from app.extensions import db
from app.services.key_rotation import encrypted_columns
from tests.support.stack import BIN, ROOT, Stack

pytestmark = pytest.mark.slow


def new_key(key_id):
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def key_ids_in_use(stack):
    """Every key id found in every encrypted column, read with raw SQL."""
    with stack.context():
        columns = [(c.table.name, c.column.name) for c in encrypted_columns()]
    found = set()
    for table, column in columns:
        rows = stack.sql(
            f"SELECT DISTINCT convert_from(substring({column} from 3 for get_byte({column}, 1)), 'SQL_ASCII') "  # noqa: S608
            f"FROM {table} WHERE {column} IS NOT NULL"
        )
        found |= {r[0] for r in rows}
    return found, columns


def rotate(env):
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", "keys", "rotate"], env=env, cwd=ROOT, capture_output=True, text=True
    )


def test_rotation_moves_every_value_to_the_newest_key(isolated_stack_factory, httpserver, tmp_path):
    k1, k2 = new_key("k1"), new_key("k2")
    old = isolated_stack_factory(ENCRYPTION_KEYS=k1)
    user = old.create_user(enroll_mfa=True)
    headers = old.login(user)
    secret = old.client().get("/v1/me/webhook-secret", headers=headers).get_json()["secret"]
    httpserver.expect_request("/hook").respond_with_data("ok")
    old.start_worker()
    job_id = (
        old.client()
        .post(
            "/v1/system/ping",
            json={"callback_url": httpserver.url_for("/hook")},
            headers={**headers, "Idempotency-Key": "rotation-1"},
        )
        .get_json()["job_id"]
    )
    assert old.wait_job(headers, job_id)["status"] == "succeeded"
    for process in old.processes:
        process.stop()

    found, columns = key_ids_in_use(old)
    assert found == {"k1"}
    assert len(columns) >= 10, "every encrypted column takes part"

    both = Stack({**old.env, "ENCRYPTION_KEYS": f"{k2},{k1}"}, tmp_path / "both", "rotating")
    try:
        both.start_worker()
        result = rotate(both.env)
        assert result.returncode == 0, result.stderr
        assert "every value is now under key k2" in result.stdout
        rotated = int(result.stdout.split("rotated ")[1].split()[0])
        assert rotated >= 8
        assert key_ids_in_use(old)[0] == {"k2"}

        again = rotate(both.env)
        assert again.returncode == 0 and "rotated 0 values" in again.stdout
        audit = both.sql("SELECT metadata->>'rotated' FROM audit_logs WHERE action = 'keys.rotated' ORDER BY id")
        assert [int(n) for (n,) in audit] == [rotated, 0]
        progress = both.sql(
            "SELECT progress_done, progress_total FROM jobs WHERE type = 'keys.rotate' ORDER BY created_at LIMIT 1"
        )
        assert progress[0][0] == progress[0][1] == rotated
    finally:
        both.close()

    # k1 removed: everything still reads.
    only_new = Stack({**old.env, "ENCRYPTION_KEYS": k2}, tmp_path / "new", "new")
    try:
        headers = only_new.login(user)
        me = only_new.client().get("/v1/me", headers=headers).get_json()
        assert me["email"] == user["email"] and me["mfa_enabled"] is True
        assert only_new.client().get("/v1/me/webhook-secret", headers=headers).get_json()["secret"] == secret
        job = only_new.client().get(f"/v1/jobs/{job_id}", headers=headers).get_json()
        assert job["result"] == {"pong": True}
        replay = only_new.client().post(
            "/v1/system/ping",
            json={"callback_url": httpserver.url_for("/hook")},
            headers={**headers, "Idempotency-Key": "rotation-1"},
        )
        assert replay.get_json()["job_id"] == job_id
        with only_new.context():
            from app.models import Job, WebhookDelivery

            stored = db.session.get(Job, job_id)
            assert stored.payload == {"sleep_ms": 0, "fail": False}
            assert stored.callback_url == httpserver.url_for("/hook")
            assert db.session.query(WebhookDelivery).filter_by(job_id=stored.id).one().url == stored.callback_url
    finally:
        only_new.close()


def test_values_stay_readable_while_rotation_runs(isolated_stack_factory, tmp_path):
    k1, k2 = new_key("k1"), new_key("k2")
    old = isolated_stack_factory(ENCRYPTION_KEYS=k1)
    people = [old.create_user() for _ in range(40)]
    both = Stack({**old.env, "ENCRYPTION_KEYS": f"{k2},{k1}"}, tmp_path / "both", "rotating")
    try:
        both.start_worker()
        rotation = subprocess.Popen(
            [str(BIN / "flask"), "--app", "app", "keys", "rotate"],
            env=both.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        reads = 0
        while rotation.poll() is None:
            assert time.monotonic() < deadline
            person = people[reads % len(people)]
            assert (
                both.client()
                .post("/v1/auth/login", json={"email": person["email"], "password": person["password"]})
                .status_code
                == 200
            )
            reads += 1
        assert rotation.returncode == 0, rotation.stderr.read()
        assert reads > 0
        assert key_ids_in_use(old)[0] == {"k2"}
    finally:
        both.close()
