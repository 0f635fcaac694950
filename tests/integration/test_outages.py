"""PostgreSQL or Redis down or restarting: every request that needs them is a prompt 503, never a 500
(issue 10, item 17, the HTTP part).

The API runs as production runs it (gunicorn, config/gunicorn.py) against a PostgreSQL and a Redis
this module owns, so it can stop, kill and restart them. During an outage each answer must be
``503 service-unavailable`` (problem JSON with ``Retry-After``) within 10 s; ``/healthz`` keeps
answering 200 and ``/readyz`` names the dependency that is down. After the restart every endpoint
answers as before, without a restart of the API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.conftest import stack_env
from tests.support.servers import OwnPostgres, OwnRedis
from tests.support.stack import BIN, ROOT, Stack

pytestmark = pytest.mark.slow

#: The longest an answer may take while a dependency is down.
ANSWER_WITHIN = 10.0
RECOVER_WITHIN = 30.0


@dataclass
class Outage:
    stack: Stack
    base: str
    postgres: OwnPostgres
    redis: OwnRedis
    user: dict[str, Any]
    headers: dict[str, str]
    job_id: str
    logins: dict[str, Any] = field(default_factory=dict)

    def log_in(self) -> None:
        response = requests.post(
            self.base + "/v1/auth/login", json={"email": self.user["email"], "password": self.user["password"]}
        )
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def calls(self) -> list[tuple[str, str, str, Any, int]]:
        """(name, method, path, json body, status when all is well) of endpoints needing Postgres and Redis."""
        login = {"email": self.logins["email"], "password": self.logins["password"]}
        return [
            ("me", "GET", "/v1/me", None, 200),
            ("jobs", "GET", "/v1/jobs", None, 200),
            ("job long-poll", "GET", f"/v1/jobs/{self.job_id}?wait=1", None, 200),
            ("ping", "POST", "/v1/system/ping", {}, 202),
            ("sessions", "GET", "/v1/auth/sessions", None, 200),
            ("login", "POST", "/v1/auth/login", login, 200),
        ]

    def call(self, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[Any, float]:
        started = time.monotonic()
        response = requests.request(
            method,
            self.base + path,
            json=body,
            headers=self.headers if headers is None else headers,
            timeout=ANSWER_WITHIN + 20,
        )
        return response, time.monotonic() - started

    def api_lines(self) -> list[dict[str, Any]]:
        return self.stack.worker_lines()


@pytest.fixture(scope="module")
def outage(keys: dict[str, str]) -> Iterator[Outage]:
    # Under the worktree like make test's servers: PostgreSQL runs as its own system user, which
    # cannot enter pytest's private temporary directories.
    workdir = ROOT / ".data" / f"outage-{os.getpid()}"
    shutil.rmtree(workdir, ignore_errors=True)
    postgres, redis_server = OwnPostgres(workdir), OwnRedis(workdir)
    try:
        env = {**stack_env("unused", 0, keys), "DATABASE_URL": postgres.start(), "REDIS_URL": redis_server.start()}
        subprocess.run([str(BIN / "flask"), "--app", "app", "db", "upgrade"], env=env, cwd=ROOT, check=True)
        stack = Stack(env, workdir / "stack", "outage")
        base = stack.start_api()
        user, other = stack.create_user(), stack.create_user()
        state = Outage(stack, base, postgres, redis_server, user, {}, "", logins=other)
        state.log_in()
        accepted, _ = state.call("POST", "/v1/system/ping", {})  # no worker: it stays queued
        assert accepted.status_code == 202, accepted.text
        state.job_id = accepted.json()["job_id"]
        yield state
        stack.close()
    finally:
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def assert_unavailable(response: Any, elapsed: float, what: str) -> None:
    assert response.status_code == 503, (what, response.status_code, response.text[:300])
    assert elapsed < ANSWER_WITHIN, (what, elapsed)
    assert response.headers["Content-Type"] == "application/problem+json", what
    problem = response.json()
    assert problem["type"] == "/problems/service-unavailable" and problem["status"] == 503, (what, problem)
    assert problem["trace_id"] == response.headers["X-Request-ID"]
    assert int(response.headers["Retry-After"]) >= 1, what


def assert_every_call_unavailable(outage: Outage) -> None:
    for name, method, path, body, _ in outage.calls():
        response, elapsed = outage.call(method, path, body)
        assert_unavailable(response, elapsed, name)
    healthz, elapsed = outage.call("GET", "/healthz", None, headers={})
    assert healthz.status_code == 200 and elapsed < 1.0, elapsed


def assert_ready_names(outage: Outage, down: set[str]) -> None:
    response, elapsed = outage.call("GET", "/readyz", None, headers={})
    assert elapsed < 5.0, elapsed
    checks = response.json()["checks"]
    expected = {name: ("unavailable" if name in down else "ok") for name in ("postgres", "redis", "broker")}
    assert checks == expected
    assert response.status_code == (503 if down else 200)


def assert_recovers(outage: Outage, since: int, *, outage_answers: bool = True) -> None:
    """Every call reaches its usual status again; on the way, nothing but 503s; nothing logged as a bug."""
    deadline = time.monotonic() + RECOVER_WITHIN
    for name, method, path, body, ok in outage.calls():
        while True:
            response, elapsed = outage.call(method, path, body)
            if response.status_code == ok:
                break
            assert_unavailable(response, elapsed, f"{name} while recovering")
            assert time.monotonic() < deadline, f"{name} did not recover within {RECOVER_WITHIN}s"
            time.sleep(0.2)
    assert_ready_names(outage, set())
    assert_logged_as_outages(outage, since, outage_answers)


def assert_logged_as_outages(outage: Outage, since: int, outage_answers: bool) -> None:
    lines = outage.api_lines()[since:]
    assert not [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")], [
        line for line in lines if line.get("level") in ("ERROR", "CRITICAL")
    ][:3]
    warnings = [line for line in lines if line.get("message") == "dependency unavailable"]
    assert bool(warnings) == outage_answers, "each outage answer is logged"
    assert all(line["level"] == "WARNING" and "exc_info" not in line for line in warnings), warnings[:3]
    assert {line["dependency"] for line in warnings} <= {"postgres", "redis", "broker"}


def test_postgres_stopped_is_a_503_on_every_endpoint_and_recovers(outage):
    since = len(outage.api_lines())
    outage.postgres.stop_immediate()
    try:
        assert_every_call_unavailable(outage)
        assert_ready_names(outage, {"postgres"})
        assert_every_call_unavailable(outage)  # again: nothing is left waiting on a dead connection
    finally:
        outage.postgres.start()
    assert_recovers(outage, since)


def test_redis_killed_is_a_503_on_every_endpoint_and_recovers(outage):
    since = len(outage.api_lines())
    outage.redis.kill()
    try:
        assert_every_call_unavailable(outage)
        assert_ready_names(outage, {"redis", "broker"})
    finally:
        outage.redis.start()  # the append-only file brings the sessions back
    assert_recovers(outage, since)


def test_redis_restarted_empty_logs_everyone_out_without_a_500(outage):
    since = len(outage.api_lines())
    outage.redis.kill()
    outage.redis.start(empty=True)
    response, _ = outage.call("GET", "/v1/me", None)
    assert response.status_code == 401, response.text  # its session is gone with Redis's data
    outage.log_in()
    assert_recovers(outage, since, outage_answers=False)


class Load:
    """Threads calling every endpoint in turn until stopped; each answer's status and time."""

    def __init__(self, outage: Outage, threads: int = 3) -> None:
        self.outage = outage
        self.answers: list[tuple[str, int, float, str, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, method, path, body, _ in self.outage.calls():
                response, elapsed = self.outage.call(method, path, body)
                content_type = response.headers.get("Content-Type", "")
                self.answers.append(
                    (name, response.status_code, elapsed, content_type, response.headers.get("Retry-After"))
                )

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answers) < count:
            assert time.monotonic() < deadline, f"only {len(self.answers)} answers"
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def assert_rode_it_out(outage: Outage, load: Load, since: int) -> None:
    expected = {name: ok for name, _, _, _, ok in outage.calls()}
    statuses = {(name, status) for name, status, *_ in load.answers}
    assert all(status in (expected[name], 503) for name, status in statuses), sorted(statuses)
    unavailable = [answer for answer in load.answers if answer[1] == 503]
    assert unavailable, "the restart was felt (a positive signal that the fault happened under load)"
    assert all(ct == "application/problem+json" and retry for _, _, _, ct, retry in unavailable)
    slowest = max(elapsed for _, _, elapsed, _, _ in load.answers)
    assert slowest < ANSWER_WITHIN, slowest
    assert_recovers(outage, since)


def test_postgres_restarting_under_load_is_never_a_500(outage):
    since = len(outage.api_lines())
    with Load(outage) as load:
        load.wait_for(20)
        outage.postgres.restart()
        after = len(load.answers)
        load.wait_for(after + 40)
    assert_rode_it_out(outage, load, since)


def test_postgres_crash_and_restart_under_load_is_never_a_500(outage):
    since = len(outage.api_lines())
    with Load(outage) as load:
        load.wait_for(20)
        outage.postgres.stop_immediate()
        down = len(load.answers)
        load.wait_for(down + 20)  # answered while it is down
        outage.postgres.start()
        load.wait_for(len(load.answers) + 40)
    assert_rode_it_out(outage, load, since)


def test_redis_restarting_under_load_is_never_a_500(outage):
    since = len(outage.api_lines())
    with Load(outage) as load:
        load.wait_for(20)
        outage.redis.kill()
        down = len(load.answers)
        load.wait_for(down + 20)
        outage.redis.start()
        load.wait_for(len(load.answers) + 40)
    assert_rode_it_out(outage, load, since)
