"""The operations CLI, run as a real ``flask --app app`` process against the test database."""

import os
import select
import subprocess
import time
import uuid

from tests.support.stack import BIN, ROOT


def flask(stack, *args):
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args], env=stack.env, cwd=ROOT, capture_output=True, text=True
    )


def create_admin(stack, email, *, stdin):
    """``flask create-admin`` with the password piped on stdin (how scripts and CI provide it)."""
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", "create-admin", "--email", email],
        env=stack.env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
    )


#: Make the pty on stdin the controlling terminal of a new session (so getpass can open /dev/tty
#: and turn echo off), then become the command.
_ON_ITS_TERMINAL = (
    "import os, sys; os.setsid(); os.close(os.open(os.ttyname(0), os.O_RDWR)); os.execv(sys.argv[1], sys.argv[1:])"
)


def on_a_terminal(stack, args, answers, timeout=60.0):
    """Run a CLI command on a pseudo-terminal of its own (its controlling tty, as in an SSH session).

    ``answers``: (prompt, typed) in order, each typed when its prompt appears; returns (exit status, all shown).
    """
    master, slave = os.openpty()
    process = subprocess.Popen(
        [str(BIN / "python"), "-c", _ON_ITS_TERMINAL, str(BIN / "flask"), "--app", "app", *args],
        env=stack.env,
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    shown, pending, cursor = "", list(answers), 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and (found := shown.find(pending[0][0], cursor)) >= 0:
                prompt, typed = pending.pop(0)
                cursor = found + len(prompt)
                os.write(master, (typed + "\n").encode())
            if process.poll() is not None and not ready:
                break
        return process.wait(timeout=max(1.0, deadline - time.monotonic())), shown
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def test_create_admin_reads_the_password_from_stdin_and_makes_a_platform_admin_who_must_enroll_mfa(stack):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    result = create_admin(stack, email, stdin="a-long-admin-password\n")
    assert result.returncode == 0, result.stderr
    user_id = result.stdout.strip().split()[-1]
    assert stack.sql("SELECT platform_role FROM users WHERE id = %s", (user_id,)) == [("platform_admin",)]
    login = stack.client().post("/v1/auth/login", json={"email": email, "password": "a-long-admin-password"})
    assert login.status_code == 200
    assert login.get_json()["mfa_enrollment_required"] is True
    assert "access_token" not in login.get_json()
    assert stack.sql("SELECT 1 FROM audit_logs WHERE action = 'user.created' AND entity_id = %s", (user_id,))


def test_create_admin_refuses_a_password_on_the_command_line_and_says_why(stack):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    result = flask(stack, "create-admin", "--email", email, "--password", "a-long-admin-password")
    assert result.returncode != 0
    message = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(message) == 1 and "shell history" in message[0] and "ps" in message[0], result.stderr
    assert "Traceback" not in result.stderr and "a-long-admin-password" not in result.stderr + result.stdout
    with stack.context():
        from app.security.crypto import blind_index

        bidx = blind_index("email", email)
    assert stack.sql("SELECT count(*) FROM users WHERE email_bidx = %s", (bidx,)) == [(0,)]


def test_create_admin_prompts_twice_on_a_terminal_without_echoing_the_password(stack):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    status, shown = on_a_terminal(
        stack,
        ["create-admin", "--email", email],
        [("Password:", "a-long-admin-password"), ("Repeat for confirmation:", "a-long-admin-password")],
    )
    assert status == 0, shown
    assert "created platform_admin" in shown and "a-long-admin-password" not in shown
    login = stack.client().post("/v1/auth/login", json={"email": email, "password": "a-long-admin-password"})
    assert login.status_code == 200


def test_create_admin_refuses_a_taken_email_and_a_short_password(stack):
    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    assert create_admin(stack, email, stdin="a-long-admin-password\n").returncode == 0
    again = create_admin(stack, email.upper(), stdin="a-long-admin-password\n")
    assert again.returncode != 0 and "already exists" in again.stderr
    short = create_admin(stack, "x" + email, stdin="short\n")
    assert short.returncode != 0 and "at least 10" in short.stderr
    empty = create_admin(stack, "y" + email, stdin="")
    assert empty.returncode != 0 and "password" in empty.stderr.lower()
    assert "Traceback" not in again.stderr + short.stderr + empty.stderr


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
