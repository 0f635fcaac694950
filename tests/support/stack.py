"""A real stack for tests: its own database, its own Redis db, the app in-process, and real
Celery worker and beat processes started on demand.

The shared session stack serves most tests (each test makes its own users, so tests never see
each other's data). Tests that stop, kill or starve workers get an isolated stack of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg2
import redis
from flask.testing import FlaskClient

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def with_redis_db(url: str, index: int) -> str:
    base = url.split("?", 1)[0]
    if base.count("/") >= 3:
        base = base.rsplit("/", 1)[0]
    return f"{base}/{index}"


def admin_connection(url: str) -> Any:
    conn = psycopg2.connect(with_database(url, "postgres"))
    conn.autocommit = True
    return conn


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    conn = admin_connection(admin_url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    conn.close()


def drop_database(admin_url: str, name: str) -> None:
    conn = admin_connection(admin_url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


class Process:
    """A worker or beat process whose JSON log lines we can read."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (kept open for the process's lifetime)
        self.popen = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_path.read_text(errors="replace"):
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{needle!r} not logged within {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and every pool child, no cleanup."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)
        self._log.close()


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
    return lines


class Stack:
    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.env = env
        self.workdir = workdir
        self.name = name
        self.processes: list[Process] = []
        workdir.mkdir(parents=True, exist_ok=True)

    # --- in-process app ---------------------------------------------------------------

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @cached_property
    def app(self) -> Any:
        from app import create_app

        return create_app(self.settings)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    @contextmanager
    def context(self) -> Iterator[None]:
        with self.app.app_context():
            yield

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url)

    def sql(self, query: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Raw SQL on our own connection, outside the app: what an operator with psql would see."""
        conn = psycopg2.connect(self.settings.database_url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    # --- people -----------------------------------------------------------------------

    def create_user(
        self, *, role: str | None = None, password: str = "correct-horse-battery", enroll_mfa: bool | None = None
    ) -> dict[str, Any]:
        """A user; staff roles get TOTP enrolled unless ``enroll_mfa=False`` (the secret is kept in the dict)."""
        from app.extensions import db
        from app.models import User
        from app.security import rbac, totp
        from app.services import audit, users

        email = f"user-{uuid.uuid4().hex[:12]}@Example.test"
        from app.unit_of_work import unit_of_work

        with self.context():
            with unit_of_work():
                user = users.create_user(email, password, audit.Actor.system(), platform_role=role)
            record: dict[str, Any] = {"id": str(user.id), "email": email, "password": password}
            if enroll_mfa or (enroll_mfa is None and rbac.mfa_required(user)):  # memberships come later
                secret = totp.new_secret()
                db.session.get(User, user.id).mfa_secret = secret
                db.session.get(User, user.id).mfa_enabled = True
                db.session.commit()
                record["totp_secret"] = secret
        return record

    def totp_code(self, user: dict[str, Any]) -> str:
        """A code for the user's next unused time step (a step is accepted once; drift is one step)."""
        import pyotp

        from app.security import totp

        while True:
            step = max(totp.current_step() - 1, user.get("last_step", -1) + 1)
            if step <= totp.current_step() + 1:
                user["last_step"] = step
                return pyotp.TOTP(user["totp_secret"]).generate_otp(step)
            time.sleep(1)

    def login(self, user: dict[str, Any]) -> dict[str, str]:
        response = self.client().post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        if body.get("mfa_required"):
            response = self.client().post(
                "/v1/auth/mfa/verify", json={"mfa_token": body["mfa_token"], "code": self.totp_code(user)}
            )
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
        return {"Authorization": f"Bearer {body['access_token']}"}

    # --- processes ----------------------------------------------------------------------

    def start_worker(self, concurrency: int = 2, label: str = "worker", queues: Sequence[str] | None = None) -> Process:
        """A prefork Celery worker consuming every queue, or only ``queues`` (as production's ``-Q``)."""
        log = self.workdir / f"{label}-{len(self.processes)}.log"
        only = ["-Q", ",".join(queues)] if queues else []
        process = Process(
            [
                str(BIN / "celery"),
                "-A",
                "workers.celery_app:celery",
                "worker",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{self.name}-{label}-{len(self.processes)}@%h",
                *only,
            ],
            self.env,
            log,
        )
        self.processes.append(process)
        process.wait_for_log(" ready.")
        return process

    def start_beat(self) -> Process:
        log = self.workdir / f"beat-{len(self.processes)}.log"
        process = Process(
            [
                str(BIN / "celery"),
                "-A",
                "workers.celery_app:celery",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.workdir / f"beat-schedule-{len(self.processes)}"),
            ],
            self.env,
            log,
        )
        self.processes.append(process)
        process.wait_for_log("beat: Starting")
        return process

    def start_api(self) -> str:
        """The API as production runs it (gunicorn, config/gunicorn.py) on a free port; its base URL."""
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = self.workdir / f"api-{len(self.processes)}.log"
        env = {**self.env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2"}
        process = Process([str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "wsgi:app"], env, log)
        self.processes.append(process)
        process.wait_for_log("Booting worker")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    return base
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)

    def worker_lines(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for process in self.processes:
            lines.extend(read_json_lines(process.log_path))
        return lines

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        if "app" in self.__dict__:
            from app.extensions import db

            with self.context():
                db.session.remove()
                for engine in db.engines.values():
                    engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()

    # --- jobs ---------------------------------------------------------------------------

    def wait_job(self, headers: dict[str, str], job_id: str, timeout: int = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            wait = max(1, min(30, int(deadline - time.monotonic())))
            asked = time.monotonic()
            response = self.client().get(f"/v1/jobs/{job_id}?wait={wait}", headers=headers)
            assert response.status_code == 200, response.get_json()
            document = response.get_json()
            if document["status"] in ("succeeded", "failed") or time.monotonic() >= deadline:
                return document
            if time.monotonic() - asked < min(wait, 1):  # over the long-poll cap: answered at once
                time.sleep(0.05)
