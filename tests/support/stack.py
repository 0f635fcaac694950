"""A real stack for tests: its own database, its own Redis db, the app in-process, and real
Celery worker and beat processes started on demand.

The shared session stack serves most tests (each test makes its own users, so tests never see
each other's data). Tests that stop, kill or starve workers get an isolated stack of their own.

Servers, databases, processes and their readiness waits are the development stack's (devstack/,
the same code ``make run``, ``make test`` and ``make bench`` use); this module adds what tests need
on top: the app in-process, people, logins and job waits.
"""

from __future__ import annotations

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
from devstack.env import BIN, ROOT
from devstack.net import free_port
from devstack.postgres import admin_connection, create_database, drop_database, with_database
from devstack.processes import Process, read_json_lines
from devstack.procfile import beat_argv, worker_argv
from devstack.redis import with_redis_db

__all__ = [
    "BIN",
    "ROOT",
    "Process",
    "Stack",
    "admin_connection",
    "create_database",
    "drop_database",
    "read_json_lines",
    "with_database",
    "with_redis_db",
]


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

    def start_worker(
        self,
        concurrency: int = 2,
        label: str = "worker",
        queues: Sequence[str] | None = None,
        app: str | None = None,
    ) -> Process:
        """A prefork Celery worker consuming every queue, or only ``queues`` (as production's ``-Q``).

        ``app``: another Celery app module (one that imports ``workers.celery_app`` plus test-only
        subscribers, e.g. ``tests.support.event_worker``).
        """
        number = len(self.processes)
        argv = worker_argv(
            hostname=f"{self.name}-{label}-{number}@%h",
            concurrency=concurrency,
            queues=queues,
            **({"app": app} if app else {}),
        )
        process = Process(label, argv, self.env, self.workdir / f"{label}-{number}.log")
        self.processes.append(process)
        process.wait_for_log(" ready.")
        return process

    def start_beat(self) -> Process:
        number = len(self.processes)
        argv = beat_argv(self.workdir / f"beat-schedule-{number}")
        process = Process("beat", argv, self.env, self.workdir / f"beat-{number}.log")
        self.processes.append(process)
        process.wait_for_log("beat: Starting")
        return process

    def start_api(self, wsgi: str = "wsgi:app") -> str:
        """The API as production runs it (gunicorn, config/gunicorn.py) on a free port; its base URL.

        ``wsgi``: another WSGI module (e.g. ``tests.support.event_wsgi:app``, with test subscribers).
        """
        port = free_port()
        env = {**self.env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2"}
        argv = [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", wsgi]
        process = Process("api", argv, env, self.workdir / f"api-{len(self.processes)}.log")
        self.processes.append(process)
        process.wait_for_log("Booting worker")
        base = f"http://127.0.0.1:{port}"
        process.wait_for_http(base + "/healthz", timeout=30)
        return base

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
