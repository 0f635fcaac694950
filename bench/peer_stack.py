"""The peer app (``../shared/peer``) on the bench's own servers, started with our topology.

The peer is a tutorial-style Flask + Celery booking API kept outside the repository as a benchmark
baseline (``../shared/peer/README.md``); nothing here modifies it. What this module gives it, so
that it is measured exactly where and how our ``bookings`` scenario is measured:

- **The same servers**: the bench run's PostgreSQL and Redis (embedded, or ``DATABASE_URL`` /
  ``REDIS_URL``), with a database of its own (``peer_bench_<run id>``, schema from the peer's own
  ``db.create_all()``, dropped at the end) and a Redis db index of its own (the first empty one
  after ours, flushed at the end).
- **The same API topology**: our Procfile's ``web`` command line (gunicorn with
  ``config/gunicorn.py``: ``WEB_CONCURRENCY`` gthread workers of ``WEB_THREADS`` threads, the same
  keep-alive and logging), pointed at the peer's ``wsgi:app`` with ``--chdir``.
- **The same worker topology**: our Procfile's ``worker`` command line with ``-A make_celery``
  (one prefork worker of ``WORKER_CONCURRENCY`` children, its ``-Q`` dropped, so it serves the
  peer's default queue), exactly as ``bench.celery_noop``'s baseline worker is made.

Where it is looked for: ``../shared/peer`` from the repository root, or ``BENCH_PEER_DIR``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import redis

from bench.stack import BIN, ROOT, BenchError, BenchStack, Child, procfile_argv, say, worker_argv
from devstack.env import run_tool
from devstack.net import StackTimeout, free_port
from devstack.postgres import create_database, drop_database, with_database
from devstack.redis import redis_db_index, with_redis_db

#: Overrides where the peer app is looked for (a worktree is not next to ``shared/``).
PEER_DIR_VARIABLE = "BENCH_PEER_DIR"

#: What a directory must hold to be the peer app.
_PEER_FILES = ("peer_app/__init__.py", "wsgi.py", "make_celery.py")

#: Our stack's variables the peer has no use for (it reads only ``PEER_*``): kept out of its
#: environment so nothing of ours leaks into what is measured.
_OURS_ONLY = {
    "APP_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "ENCRYPTION_KEYS",
    "BLIND_INDEX_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
    "RATE_LIMIT_DEFAULT",
    "RATE_LIMIT_AUTH",
    "PYTHONPATH",
}

#: A key that marks the peer's Redis db as taken while the run uses it (another bench looking for
#: an empty db then passes it by); the peer's Celery never reads it.
_CLAIM_KEY = "bench:peer:claimed-by"

#: The peer's schema, made the way its README says (``db.create_all()``), by the peer's own code.
_CREATE_SCHEMA = (
    "from peer_app import create_app\n"
    "from peer_app.models import db\n"
    "app = create_app()\n"
    "with app.app_context():\n"
    "    db.create_all()\n"
)


def peer_dir() -> Path:
    """Where the peer app should be: ``BENCH_PEER_DIR``, else ``../shared/peer`` from the repo root."""
    override = os.environ.get(PEER_DIR_VARIABLE)
    return Path(override).resolve() if override else (ROOT.parent / "shared" / "peer").resolve()


def is_peer_app(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _PEER_FILES)


class PeerStack:
    """The peer's database, Redis db and processes on a started ``BenchStack``; ``close()`` undoes it all."""

    def __init__(self, stack: BenchStack, directory: Path) -> None:
        self.stack = stack
        self.dir = directory
        self.database_name = f"peer_bench_{stack.run_id}"
        self.database_url = ""
        self.redis_url = ""
        #: The HS256 secret of the peer's stateless JWT; the bench client mints its residents' tokens with it.
        self.jwt_secret = secrets.token_urlsafe(32)
        self.env: dict[str, str] = {}
        self.api_url: str | None = None
        self.children: dict[str, Child] = {}
        self._database_created = False
        self._redis_claimed = False

    # --- setting up ---------------------------------------------------------------------

    def start(self) -> None:
        create_database(self.stack.base_database_url, self.database_name)
        self._database_created = True
        self.database_url = with_database(self.stack.base_database_url, self.database_name)
        self.redis_url = self._claim_redis_db()
        env = {k: v for k, v in self.stack.env.items() if k not in _OURS_ONLY}
        env.update(
            PEER_DATABASE_URL=_sqlalchemy_url(self.database_url),
            PEER_REDIS_URL=self.redis_url,
            PEER_JWT_SECRET=self.jwt_secret,
            PYTHONPATH=str(self.dir),
        )
        self.env = env
        run_tool([str(BIN / "python"), "-c", _CREATE_SCHEMA], self.env, "creating the peer's schema")
        say(f"peer: database {self.database_name}, Redis db {redis_db_index(self.redis_url)}, app at {self.dir}")

    def _claim_redis_db(self) -> str:
        """The first empty Redis db index after ours (wrapping), marked as taken."""
        ours = redis_db_index(self.stack.redis_url)
        client = redis.Redis.from_url(self.stack.redis_url)
        try:
            try:
                count = int(client.config_get("databases").get("databases", 16))
            except redis.RedisError:  # CONFIG may be disabled on a managed server
                count = 16
        finally:
            client.close()
        for step in range(1, count):
            url = with_redis_db(self.stack.redis_url, (ours + step) % count)
            candidate = redis.Redis.from_url(url)
            try:
                if candidate.dbsize() == 0 and candidate.set(_CLAIM_KEY, self.stack.run_id, nx=True):
                    self._redis_claimed = True
                    return url
            finally:
                candidate.close()
        raise BenchError(f"no empty Redis db index for the peer among the server's {count}")

    def seed_blocks(self, count: int, price: int) -> list[str]:
        """``count`` available blocks inserted in one statement; their ids in insertion order."""
        rows = self.sql(
            "INSERT INTO blocks (id, status, version, price)"
            " SELECT gen_random_uuid(), 'available', 1, %s FROM generate_series(1, %s) RETURNING id::text",
            (price, count),
        )
        return [r[0] for r in rows]

    # --- processes ----------------------------------------------------------------------

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(f"peer-{name}", argv, env, self.stack.logs / f"peer-{name}-{len(self.stack.children)}.log")
        self.stack.children.append(child)  # the stack stops it too if anything goes wrong
        self.children[name] = child
        return child

    def start_api(self, timeout: float = 60.0) -> str:
        """Our Procfile's ``web`` (gunicorn, ``config/gunicorn.py``) serving the peer's ``wsgi:app``."""
        port = free_port()
        argv = procfile_argv("web", self.env)
        argv = [str(ROOT / a) if a == "config/gunicorn.py" else a for a in argv]
        argv[1:1] = ["--chdir", str(self.dir)]
        # No PYTHONPATH: gunicorn puts the cwd (our root, which has a wsgi.py of its own) first on
        # sys.path before it reads --chdir, and puts the --chdir directory before it only when that
        # directory is not on sys.path already.
        env = {k: v for k, v in self.env.items() if k != "PYTHONPATH"}
        child = self._start("api", argv, {**env, "PORT": str(port)})
        url = f"http://127.0.0.1:{port}"
        try:
            child.wait_for_http(f"{url}/healthz", timeout)
        except StackTimeout as exc:
            raise BenchError(f"the peer's API did not become ready within {timeout:.0f}s:\n{child.tail()}") from exc
        self.api_url = url
        say(f"peer: API (our gunicorn settings) on {url}")
        return url

    def start_worker(self) -> Child:
        """Our Procfile's ``worker`` command line with ``-A make_celery`` (the peer's Celery app)."""
        argv = worker_argv(self.env, f"bench-peer-{self.stack.run_id}@%h", app="make_celery")
        child = self._start("worker", argv, self.env)
        child.wait_for_log(" ready.")
        say("peer: Celery worker (our worker command line) ready")
        return child

    @contextlib.contextmanager
    def running(self, *starters: str) -> Iterator[PeerStack]:
        """``with peer.running("api", "worker"):`` starts them, and stops them on the way out."""
        started: list[str] = []
        try:
            for starter in starters:
                getattr(self, f"start_{starter}")()
                started.append(starter)
            yield self
        finally:
            for name in reversed(started):
                self.children.pop(name).stop()
            if "api" in started:
                self.api_url = None

    def process_groups(self) -> dict[str, int]:
        """The peer's API and worker under our groups' names, beside the shared servers (``bench.cpu``)."""
        groups = {k: v for k, v in self.stack.process_groups().items() if k in ("postgres", "redis")}
        groups.update({name: child.pid for name, child in self.children.items() if child.alive()})
        return groups

    # --- reading ------------------------------------------------------------------------

    def sql(self, query: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(self.database_url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    # --- tearing down ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop its processes, drop its database, flush its Redis db; each step runs whatever failed before."""
        steps = [(f"stop peer {name}", child.stop) for name, child in reversed(self.children.items())]
        steps += [("drop the peer's database", self._drop_database), ("flush the peer's Redis db", self._flush)]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # report and go on cleaning up
                say(f"cleanup: {what} failed: {exc}")
        self.children.clear()

    def _drop_database(self) -> None:
        if not self._database_created:
            return
        drop_database(self.stack.base_database_url, self.database_name)
        self._database_created = False

    def _flush(self) -> None:
        if not self._redis_claimed:
            return
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushdb()
        finally:
            client.close()
        self._redis_claimed = False


def _sqlalchemy_url(url: str) -> str:
    """The peer's Flask-SQLAlchemy wants ``postgresql+psycopg2://`` (its README's form)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg2{sep}{rest}" if scheme in ("postgres", "postgresql") else url
