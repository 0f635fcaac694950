"""The stack a benchmark runs against, started the way production runs it.

- Servers: ``DATABASE_URL`` / ``REDIS_URL`` when set; otherwise the development stack's embedded
  PostgreSQL and Redis (devstack/, the same classes ``make run`` uses), on free ports of their own,
  with their data under this run's temporary directory.
- A fresh database per run (``estacionate_bench_<pid>_<random>``), migrated with the real
  ``flask db upgrade`` and dropped on exit. One Redis db index, which must be empty at start
  (``--flush-redis`` empties it), flushed on exit.
- ``APP_ENV=production`` with throwaway keys generated for the run (not ``dev``-marked, so the
  production profile accepts them): the measured code paths are production's (argon2 at full cost,
  60 s republish delay, no loopback callbacks, ``TESTING`` off, the rate limiter on), except that
  the per-user request ceiling and the per-IP login ceiling are lifted (``RATE_LIMIT_DEFAULT`` and
  ``RATE_LIMIT_AUTH`` below).
- Processes come from the Procfile's own command lines (``web`` = gunicorn with
  ``config/gunicorn.py``, ``WEB_CONCURRENCY=2``; ``worker`` = one Celery worker, prefork
  ``--concurrency 2``, its ``-Q`` dropped so it serves every queue), so the benchmark follows
  whatever production runs. Beat is never started. Process groups, readiness waits and stopping
  are devstack's (``devstack.processes``).

Everything started here is stopped in ``close()``: child process groups, the database, the Redis
db's contents, the embedded servers and the temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import redis

from devstack.env import BIN, ROOT, generate_keys, migrate, run_tool, with_tools
from devstack.net import StackError, StackTimeout, free_port
from devstack.postgres import EmbeddedPostgres, admin_connection, with_database
from devstack.processes import Process
from devstack.procfile import PROCFILE, celery_worker, procfile_argv
from devstack.redis import EmbeddedRedis, redis_db_index
from devstack.servers import Servers

__all__ = ["BIN", "PROCFILE", "ROOT", "BenchError", "BenchStack", "Child", "procfile_argv", "say"]

#: Production's process counts, fixed so figures are comparable between runs and machines.
WEB_CONCURRENCY = "2"
WORKER_CONCURRENCY = "2"

#: Inherited variables that would change what is measured; the stack sets its own.
_STACK_VARIABLES = {
    "APP_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "ENCRYPTION_KEYS",
    "BLIND_INDEX_KEY",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "WEB_THREADS",
    "WORKER_CONCURRENCY",
    "PROMETHEUS_MULTIPROC_DIR",
    "LOG_LEVEL",
    "RATE_LIMIT_DEFAULT",
    "RATE_LIMIT_AUTH",
}

#: Production's per-user request limit (600/minute) would cap one benchmark user at a few jobs a
#: second and the figure would measure the cap. The limiter still runs on every request (its
#: Redis counter is part of the measured cost); only its ceiling is lifted, as if the load came
#: from many users each within their limit.
RATE_LIMIT_DEFAULT = "1000000/minute"

#: Production's login limit (20/minute per client IP) would make logging in the scenarios' fifty
#: residents from 127.0.0.1 take minutes. Each login still pays argon2 at production cost and the
#: limiter's counter; only the ceiling is lifted, as if the residents logged in from their own homes.
RATE_LIMIT_AUTH = "1000000/minute"


#: The stack could not be set up or a process misbehaved (not a measured outcome). devstack raises
#: it too (a process that exits early, a readiness wait that runs out), so one ``except`` catches both.
BenchError = StackError

#: A process the bench started (devstack's: its own process group, its output in a log file).
Child = Process


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def worker_argv(env: dict[str, str], hostname: str, app: str | None = None) -> list[str]:
    """The Procfile's ``worker`` as one Celery worker serving every queue (its ``-Q`` dropped).

    Production splits its workers by queue (Procfile ``worker`` and ``bulk``); the benchmark keeps
    measuring one worker of WORKER_CONCURRENCY children serving everything, comparable across runs.
    """
    return celery_worker(procfile_argv("worker", env), hostname=hostname, app=app)


class BenchStack:
    """Servers, a throwaway database, keys and the processes scenarios start and stop."""

    def __init__(self, *, flush_redis: bool = False, keep_workdir: bool = False, own_servers: bool = False) -> None:
        """``own_servers``: always start embedded servers, whatever ``DATABASE_URL`` / ``REDIS_URL``
        say (the fault suite stops and kills them, so it must never be handed servers it does not own)."""
        self.flush_redis = flush_redis
        self.keep_workdir = keep_workdir
        self.own_servers = own_servers
        self.workdir = Path(tempfile.mkdtemp(prefix="estacionate-bench-"))
        self.logs = self.workdir / "logs"
        self.logs.mkdir()
        self.run_id = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.children: list[Child] = []
        #: The embedded servers this run started (none when both URLs are given).
        self.servers: list[EmbeddedPostgres | EmbeddedRedis] = []
        self.database_name = f"estacionate_bench_{self.run_id}"
        self.base_database_url = ""
        self.database_url = ""
        self.redis_url = ""
        self.embedded = {"postgres": False, "redis": False}
        self._database_created = False
        self._redis_owned = False
        self.env: dict[str, str] = {}
        self.api_url: str | None = None

    # --- setting up ---------------------------------------------------------------------

    def start(self) -> None:
        self._start_servers()
        self._create_database()
        self._claim_redis_db()
        metrics_dir = self.workdir / "prometheus"
        metrics_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
        env.update(generate_keys(production=True))
        env.update(
            APP_ENV="production",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            LOG_LEVEL="INFO",
            RATE_LIMIT_DEFAULT=RATE_LIMIT_DEFAULT,
            RATE_LIMIT_AUTH=RATE_LIMIT_AUTH,
            HOST="127.0.0.1",
            WEB_CONCURRENCY=WEB_CONCURRENCY,
            WORKER_CONCURRENCY=WORKER_CONCURRENCY,
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            # Production refuses to start without Twilio; the bench sends WhatsApp nowhere (a port
            # nothing listens on), so a message costs one refused connection per attempt.
            TWILIO_ACCOUNT_SID="AC" + "0" * 32,
            TWILIO_AUTH_TOKEN="bench-twilio-auth-token-" + "0" * 8,
            TWILIO_WHATSAPP_FROM="whatsapp:+14155238886",
            TWILIO_API_BASE="http://127.0.0.1:9",
            PUBLIC_BASE_URL="https://bench.estacionate.example",
        )
        self.env = with_tools(env)
        say(f"migrating database {self.database_name}")
        migrate(self.env, capture=True)

    def _start_servers(self) -> None:
        given = {} if self.own_servers else os.environ
        servers = Servers(self.workdir / "servers", {"postgres": free_port(), "redis": free_port()})
        with contextlib.redirect_stdout(sys.stderr):  # its progress lines; stdout is the table's
            try:
                urls = servers.urls(given)
            except BaseException:  # one started, the other not: stop the one
                servers.stop()
                raise
        self.embedded = dict(servers.embedded)
        self.servers = [s for s, on in ((servers.postgres, "postgres"), (servers.redis, "redis")) if self.embedded[on]]
        self.base_database_url, self.redis_url = urls["DATABASE_URL"], urls["REDIS_URL"]

    @property
    def embedded_postgres(self) -> EmbeddedPostgres | None:
        return next((s for s in self.servers if isinstance(s, EmbeddedPostgres)), None)

    @property
    def embedded_redis(self) -> EmbeddedRedis | None:
        return next((s for s in self.servers if isinstance(s, EmbeddedRedis)), None)

    def _admin(self) -> Any:
        return admin_connection(self.base_database_url)

    def _create_database(self) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database_name}"')
        finally:
            conn.close()
        self._database_created = True
        self.database_url = with_database(self.base_database_url, self.database_name)

    def _claim_redis_db(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = client.dbsize()
            if keys and not (self.flush_redis or self.embedded["redis"]):
                raise BenchError(
                    f"Redis db {redis_db_index(self.redis_url)} holds {keys} keys; the benchmark needs an empty db "
                    "(its queues must hold only its own messages). Point REDIS_URL at another db index, "
                    "or pass --flush-redis to empty this one."
                )
            client.flushdb()
            self._redis_owned = True
        finally:
            client.close()

    def run_python_tool(self, argv: list[str], what: str) -> str:
        """Run a CLI in the stack's environment; its stdout, or BenchError with its output."""
        return run_tool(argv, self.env, what)

    def create_user(self, role: str | None = None) -> dict[str, str]:
        """A user made through the services (``bench/seed.py``), with a random password."""
        email = f"bench-{uuid.uuid4().hex[:12]}@bench.estacionate.test"
        password = secrets.token_urlsafe(24)
        argv = [str(BIN / "python"), "-m", "bench.seed", "user", "--email", email, "--password", password]
        if role:
            argv += ["--role", role]
        user_id = self.run_python_tool(argv, "creating the benchmark user").strip().splitlines()[-1]
        return {"id": user_id, "email": email, "password": password}

    # --- processes ----------------------------------------------------------------------

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name, argv, env or self.env, self.logs / f"{name}-{len(self.children)}.log")
        self.children.append(child)
        return child

    def start_api(self, timeout: float = 60.0) -> str:
        """gunicorn as the Procfile's ``web`` runs it; returns the base URL once /readyz answers 200."""
        port = free_port()
        child = self._start("api", procfile_argv("web", self.env), {**self.env, "PORT": str(port)})
        url = f"http://127.0.0.1:{port}"
        try:
            child.wait_for_http(f"{url}/readyz", timeout)
        except StackTimeout as exc:
            raise BenchError(f"the API did not become ready within {timeout:.0f}s:\n{child.tail()}") from exc
        self.api_url = url
        say(f"API (gunicorn, {WEB_CONCURRENCY} workers) on {url}")
        return url

    def start_app_worker(self) -> Child:
        """The Procfile's ``worker``: one Celery worker, prefork with WORKER_CONCURRENCY children."""
        child = self._start("worker", worker_argv(self.env, f"bench-app-{self.run_id}@%h"))
        child.wait_for_log(" ready.")
        say(f"Celery worker (prefork -c {WORKER_CONCURRENCY}) ready")
        return child

    def start_loopback_worker(self) -> Child:
        """The app worker, allowed to call receivers on loopback (the ``events`` scenario's webhooks).

        Production's outbound policy refuses loopback (and plain http) everywhere, so this one
        worker runs the ``development`` profile, whose only difference that matters here is
        ``ALLOW_LOOPBACK_CALLBACKS``; everything else (keys, costs, topology) is the stack's.
        """
        env = {**self.env, "APP_ENV": "development", "ALLOW_LOOPBACK_CALLBACKS": "1"}
        child = self._start("loopback-worker", worker_argv(env, f"bench-loopback-{self.run_id}@%h"), env)
        child.wait_for_log(" ready.")
        say(f"Celery worker (prefork -c {WORKER_CONCURRENCY}, loopback webhooks allowed) ready")
        return child

    def start_worker_with(self, overrides: dict[str, str], label: str) -> Child:
        """The app worker with some settings changed (``anonymize``'s kill check shortens the job
        lease, so a killed worker's job is taken over in seconds rather than production's minute)."""
        env = {**self.env, **overrides}
        child = self._start(f"worker-{label}", worker_argv(env, f"bench-{label}-{self.run_id}@%h"), env)
        child.wait_for_log(" ready.")
        say(f"Celery worker {label} (prefork -c {WORKER_CONCURRENCY}; {overrides}) ready")
        return child

    def start_beat_with(self, overrides: dict[str, str]) -> Child:
        """The Procfile's ``beat`` (the relays, which re-publish a dead worker's job), schedule file
        in this run's directory. Only the kill check starts it: every measured phase runs without beat."""
        env = {**self.env, **overrides, "BEAT_SCHEDULE_FILE": str(self.workdir / f"beat-{len(self.children)}")}
        child = self._start("beat", procfile_argv("beat", env), env)
        child.wait_for_log("beat: Starting")
        say("Celery beat started")
        return child

    def start_noop_worker(self) -> Child:
        """The same worker command line with the app swapped for ``bench.celery_noop`` (baseline)."""
        argv = worker_argv(self.env, f"bench-noop-{self.run_id}@%h", app="bench.celery_noop:celery")
        child = self._start("noop-worker", argv)
        child.wait_for_log(" ready.")
        say(f"baseline Celery worker (no-op app, prefork -c {WORKER_CONCURRENCY}) ready")
        return child

    @contextlib.contextmanager
    def running(self, *starters: str) -> Any:
        """``with stack.running("api", "app_worker"):`` starts them, and stops them on the way out."""
        started: list[Child] = []
        try:
            for starter in starters:
                before = len(self.children)
                getattr(self, f"start_{starter}")()
                started.extend(self.children[before:])
            yield self
        finally:
            for child in reversed(started):
                child.stop()
            if "api" in starters:
                self.api_url = None

    # --- reading ------------------------------------------------------------------------

    def sql(self, query: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(self.database_url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def connect(self, *, autocommit: bool = False) -> Any:
        """A psycopg2 connection to the run's database (the caller closes it)."""
        conn = psycopg2.connect(self.database_url)
        conn.autocommit = autocommit
        return conn

    def maintenance(self, *statements: str) -> None:
        """Statements that cannot run in a transaction block (``VACUUM``, ``CHECKPOINT``)."""
        conn = self.connect(autocommit=True)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def settle(self, *tables: str) -> None:
        """The same starting point for two timed phases: tables vacuumed and analyzed, dirty pages
        written out (``CHECKPOINT``, skipped with a note where the role may not run it)."""
        self.maintenance(*(f"VACUUM (ANALYZE) {table}" for table in tables))
        try:
            self.maintenance("CHECKPOINT")
        except psycopg2.Error as exc:
            say(f"CHECKPOINT refused ({(exc.pgerror or str(exc)).strip()}); going on without it")

    def pg_sessions(self) -> int | None:
        """Sessions ever opened to the run's database (PostgreSQL 14+): their growth during a phase is
        the connections the processes opened (pool overflow, reconnects). Waits out the statistics'
        flush delay (other backends report at most once a second)."""
        time.sleep(1.1)
        try:
            rows = self.sql("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        except psycopg2.Error:
            return None
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def process_groups(self) -> dict[str, int]:
        """Leaders of what runs now (our children, the embedded servers), for ``bench.cpu``."""
        groups = {child.name: child.popen.pid for child in self.children if child.alive()}
        if self.embedded_redis is not None and self.embedded_redis.running():
            assert self.embedded_redis.process is not None
            groups["redis"] = self.embedded_redis.process.pid
        if self.embedded_postgres is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid_file = self.embedded_postgres.pgdata / "postmaster.pid"
                groups["postgres"] = int(pid_file.read_text().splitlines()[0])
        return groups

    def describe(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "database": self.database_name,
            "app_env": "production",
            "postgres": "embedded" if self.embedded["postgres"] else "DATABASE_URL",
            "redis": "embedded" if self.embedded["redis"] else "REDIS_URL",
            "redis_db": redis_db_index(self.redis_url) if self.redis_url else None,
            "api": f"gunicorn gthread, WEB_CONCURRENCY={WEB_CONCURRENCY}",
            "worker": f"1 Celery worker, prefork --concurrency {WORKER_CONCURRENCY}",
            "beat": "off",
            "rate_limit_default": RATE_LIMIT_DEFAULT,
            "rate_limit_auth": RATE_LIMIT_AUTH,
        }

    def dump_logs(self, lines: int = 20) -> None:
        for child in self.children:
            say(f"--- last lines of {child.log_path.name} ---\n{child.tail(lines)}")

    # --- tearing down ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything this stack started; each step runs even if an earlier one failed."""
        steps = [(f"stop {c.name}", c.stop) for c in reversed(self.children)]
        steps += [("drop database", self._drop_database), ("flush Redis db", self._release_redis_db)]
        steps += [(f"stop {type(s).__name__}", s.stop) for s in reversed(self.servers)]
        for what, step in steps:
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    step()
            except Exception as exc:  # report and go on cleaning up
                say(f"cleanup: {what} failed: {exc}")
        if self.keep_workdir:
            say(f"kept {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _drop_database(self) -> None:
        if not self._database_created:
            return
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        finally:
            conn.close()
        self._database_created = False

    def _release_redis_db(self) -> None:
        if not self._redis_owned:
            return
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushdb()
        finally:
            client.close()
        self._redis_owned = False
