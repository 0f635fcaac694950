"""The stack a benchmark runs against, started the way production runs it.

- Servers: ``DATABASE_URL`` / ``REDIS_URL`` when set; otherwise the embedded PostgreSQL and Redis of
  ``scripts/stack.py`` (the same classes ``make run`` uses), on free ports of their own, with their
  data under this run's temporary directory.
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
  whatever production runs. Beat is never started.

Everything started here is stopped in ``close()``: child process groups, the database, the Redis
db's contents, the embedded servers and the temporary directory.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg2
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROCFILE = ROOT / "Procfile"

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


class BenchError(RuntimeError):
    """The stack could not be set up or a process misbehaved (not a measured outcome)."""


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_path(url: str, last: str) -> str:
    """``url`` with its last path segment (database name, Redis db index) replaced."""
    base, sep, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}/{last}{sep}{query}"


def redis_db_index(url: str) -> int:
    path = url.partition("?")[0].partition("://")[2].partition("/")[2]
    return int(path) if path.isdigit() else 0


def generate_keys() -> dict[str, str]:
    """Throwaway keys for one run; unlike ``make run``'s they carry no ``dev`` marker."""
    return {
        "SECRET_KEY": "bench-" + secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def procfile_argv(name: str, env: Mapping[str, str]) -> list[str]:
    """The Procfile's command for ``name``, with ``${VAR:-default}`` expanded from ``env``."""
    for line in PROCFILE.read_text().splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == name:
            expanded = re.sub(
                r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m.group(1)) or m.group(2) or "", command.strip()
            )
            argv = shlex.split(expanded)
            if (BIN / argv[0]).exists():
                argv[0] = str(BIN / argv[0])
            return argv
    raise BenchError(f"the Procfile has no {name!r} process")


def all_queues(argv: list[str]) -> list[str]:
    """A worker command line without its ``-Q`` (and ``-n``): one worker consuming every queue.

    Production splits its workers by queue (Procfile ``worker`` and ``bulk``); the benchmark keeps
    measuring one worker of WORKER_CONCURRENCY children serving everything, comparable across runs.
    """
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-Q", "--queues", "-n", "--hostname"):
            skip = True
        else:
            out.append(arg)
    return out


def _stack_script() -> ModuleType:
    """``scripts/stack.py`` (not a package), loaded by path for its embedded-server classes."""
    spec = importlib.util.spec_from_file_location("estacionate_stack_script", ROOT / "scripts" / "stack.py")
    if spec is None or spec.loader is None:
        raise BenchError("cannot load scripts/stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Child:
    """A process started in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if needle in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not log {needle!r} within {timeout:.0f}s:\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the whole group (warm shutdown), SIGKILL it if it lingers."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


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
        self.servers: list[Any] = []
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
        env.update(generate_keys())
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
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        self.env = env
        say(f"migrating database {self.database_name}")
        self.run_python_tool([str(BIN / "flask"), "--app", "app", "db", "upgrade"], "migrate")

    def _start_servers(self) -> None:
        self.base_database_url = "" if self.own_servers else os.environ.get("DATABASE_URL", "")
        base_redis_url = "" if self.own_servers else os.environ.get("REDIS_URL", "")
        if self.base_database_url and base_redis_url:
            say("using DATABASE_URL and REDIS_URL from the environment")
        else:
            script = _stack_script()
            with contextlib.redirect_stdout(sys.stderr):  # its progress lines; stdout is the table's
                if not self.base_database_url:
                    postgres = script.EmbeddedPostgres(self.workdir / "servers", free_port())
                    self.servers.append(postgres)
                    self.base_database_url = postgres.start()
                    self.embedded["postgres"] = True
                if not base_redis_url:
                    server = script.EmbeddedRedis(self.workdir / "servers", free_port(), persistent=False)
                    self.servers.append(server)
                    base_redis_url = server.start()
                    self.embedded["redis"] = True
        self.redis_url = base_redis_url

    def _admin(self) -> Any:
        conn = psycopg2.connect(with_path(self.base_database_url, "postgres"))
        conn.autocommit = True
        return conn

    def _create_database(self) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database_name}"')
        finally:
            conn.close()
        self._database_created = True
        self.database_url = with_path(self.base_database_url, self.database_name)

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
        result = subprocess.run(argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise BenchError(f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout

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
        deadline = time.monotonic() + timeout
        while True:
            child.check_alive()
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"the API did not become ready within {timeout:.0f}s:\n{child.tail()}")
            time.sleep(0.2)
        self.api_url = url
        say(f"API (gunicorn, {WEB_CONCURRENCY} workers) on {url}")
        return url

    def start_app_worker(self) -> Child:
        """The Procfile's ``worker``: one Celery worker, prefork with WORKER_CONCURRENCY children."""
        argv = [*all_queues(procfile_argv("worker", self.env)), "-n", f"bench-app-{self.run_id}@%h"]
        child = self._start("worker", argv)
        child.wait_for_log(" ready.")
        say(f"Celery worker (prefork -c {WORKER_CONCURRENCY}) ready")
        return child

    def start_noop_worker(self) -> Child:
        """The same worker command line with the app swapped for ``bench.celery_noop`` (baseline)."""
        argv = all_queues(procfile_argv("worker", self.env))
        argv[argv.index("-A") + 1] = "bench.celery_noop:celery"
        child = self._start("noop-worker", [*argv, "-n", f"bench-noop-{self.run_id}@%h"])
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
        for server in self.servers:
            process = getattr(server, "process", None)  # EmbeddedRedis
            if process is not None and process.poll() is None:
                groups["redis"] = process.pid
            pid_file = Path(getattr(server, "pgdata", "/nonexistent")) / "postmaster.pid"  # EmbeddedPostgres
            with contextlib.suppress(OSError, ValueError, IndexError):
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
