"""The operations CLI, run as a real ``flask --app app`` process against the test database."""

import subprocess
import uuid

from tests.support.stack import BIN, ROOT


def flask(stack, *args):
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args], env=stack.env, cwd=ROOT, capture_output=True, text=True
    )


def test_create_admin_makes_a_platform_admin_who_must_enroll_mfa(stack):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    result = flask(stack, "create-admin", "--email", email, "--password", "a-long-admin-password")
    assert result.returncode == 0, result.stderr
    user_id = result.stdout.strip().split()[-1]
    assert stack.sql("SELECT platform_role FROM users WHERE id = %s", (user_id,)) == [("platform_admin",)]
    login = stack.client().post("/v1/auth/login", json={"email": email, "password": "a-long-admin-password"})
    assert login.status_code == 200
    assert login.get_json()["mfa_enrollment_required"] is True
    assert "access_token" not in login.get_json()
    assert stack.sql("SELECT 1 FROM audit_logs WHERE action = 'user.created' AND entity_id = %s", (user_id,))


def test_create_admin_refuses_a_taken_email_and_a_short_password(stack):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    assert flask(stack, "create-admin", "--email", email, "--password", "a-long-admin-password").returncode == 0
    again = flask(stack, "create-admin", "--email", email.upper(), "--password", "a-long-admin-password")
    assert again.returncode != 0 and "already exists" in again.stderr
    short = flask(stack, "create-admin", "--email", "x" + email, "--password", "short")
    assert short.returncode != 0 and "at least 10" in short.stderr
    assert "Traceback" not in again.stderr + short.stderr


def test_seed_demo_is_idempotent_and_prints_the_logins(stack):
    first = flask(stack, "seed-demo")
    second = flask(stack, "seed-demo")
    assert first.returncode == second.returncode == 0, first.stderr
    assert "admin@demo.estacionate.cl" in second.stdout
    with stack.context():
        from app.security.crypto import blind_index

        bidx = blind_index("email", "admin@demo.estacionate.cl")
    assert stack.sql("SELECT count(*) FROM users WHERE email_bidx = %s", (bidx,)) == [(1,)]


def test_seed_demo_is_refused_in_production(stack, tmp_path):
    env = {**stack.env, "APP_ENV": "production"}
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "seed-demo"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "refuses to start" in result.stderr  # dev keys are refused before the command even runs
