"""The stack the fault suite breaks, and the hands that break it.

It is ``bench/stack.py``'s production stack (``APP_ENV=production``, throwaway keys, a fresh
database migrated with the real ``flask db upgrade``, processes from the Procfile's own command
lines; servers, process groups and readiness waits from devstack/), with three differences:

- Its servers are always its own: an embedded PostgreSQL and Redis on free ports under the run's
  temporary directory (``BenchStack(own_servers=True)``), never ``DATABASE_URL`` / ``REDIS_URL``,
  because the faults stop and kill them.
- Every Procfile process runs: ``web`` (gunicorn, ``WEB_CONCURRENCY=2``), every entry that runs a
  ``celery ... worker`` (today one ``worker``; when the Procfile splits the queues into several
  workers, all of them), and ``beat``.
- It can stop PostgreSQL (``pg_ctl stop -m immediate``) and start it again, SIGKILL Redis and start it
  again empty, freeze and SIGKILL the workers' pool children, stop, start and double beat, and
  "heal": restart whatever a scenario left dead so the next scenario starts from a whole stack.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import requests

from bench.stack import BenchError, BenchStack, Child, say
from devstack.postgres import EmbeddedPostgres
from devstack.procfile import procfile_argv, procfile_names
from devstack.redis import EmbeddedRedis


@dataclass(frozen=True)
class Timers:
    """The stack's recovery clocks, read from its own settings (so deadlines follow the code)."""

    #: A queued job whose message was lost is published again after this long.
    republish_s: float
    #: Beat runs the outbox relay this often.
    relay_s: float
    #: A running booking whose worker died is taken over after this long.
    lease_s: float


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        if int(raw[raw.rfind(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class ChaosStack(BenchStack):
    def __init__(self, *, overrides: dict[str, str] | None = None, keep_workdir: bool = False) -> None:
        super().__init__(keep_workdir=keep_workdir, own_servers=True)
        #: Settings the run changes (the CI-sized run shortens the recovery clocks).
        self.overrides = dict(overrides or {})
        self.api: Child | None = None
        self.workers: dict[str, Child] = {}
        self.beats: list[Child] = []
        self._beat_count = 0
        self._worker_count = 0

    # --- starting ---------------------------------------------------------------------------

    def start(self) -> None:
        super().start()
        self.env.update(self.overrides)
        self.env["BEAT_SCHEDULE_FILE"] = str(self.workdir / "beat-0.schedule")

    def start_all(self) -> None:
        self.start_api()
        self.api = self.children[-1]
        for name in procfile_names("worker"):
            self.start_worker(name)
        self.start_beat()

    def start_worker(self, name: str) -> Child:
        self._worker_count += 1
        argv = [*procfile_argv(name, self.env), "-n", f"chaos-{name}-{self.run_id}-{self._worker_count}@%h"]
        child = self._start(name, argv)
        child.wait_for_log(" ready.")
        self.workers[name] = child
        say(f"Celery {name} ready (pid {child.popen.pid})")
        return child

    def start_beat(self) -> Child:
        """A beat with a schedule file of its own (a second one is a second deployment's beat)."""
        self._beat_count += 1
        env = {**self.env, "BEAT_SCHEDULE_FILE": str(self.workdir / f"beat-{self._beat_count}.schedule")}
        child = self._start("beat", procfile_argv("beat", env), env)
        child.wait_for_log("beat: Starting")
        self.beats.append(child)
        say(f"beat #{self._beat_count} started (pid {child.popen.pid})")
        return child

    def stop_beat(self, child: Child) -> None:
        child.stop()
        if child in self.beats:
            self.beats.remove(child)

    # --- the servers -------------------------------------------------------------------------

    @property
    def postgres(self) -> EmbeddedPostgres:
        assert self.embedded_postgres is not None, "the fault suite's servers are always its own"
        return self.embedded_postgres

    @property
    def redis_server(self) -> EmbeddedRedis:
        assert self.embedded_redis is not None, "the fault suite's servers are always its own"
        return self.embedded_redis

    def stop_postgres(self, mode: str = "immediate") -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self.postgres.stop(mode)

    def start_postgres(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self.postgres.start()

    def postgres_up(self) -> bool:
        try:
            psycopg2.connect(self.database_url, connect_timeout=2).close()
        except psycopg2.Error:
            return False
        return True

    def kill_redis(self) -> int:
        """SIGKILL the Redis server; its pid."""
        assert self.redis_server.process is not None
        pid = int(self.redis_server.process.pid)
        with contextlib.redirect_stdout(sys.stderr):
            self.redis_server.kill()
        return pid

    def start_redis(self) -> int:
        """Start Redis again (no persistence: it comes back empty); its pid."""
        with contextlib.redirect_stdout(sys.stderr):
            self.redis_server.start()
        assert self.redis_server.process is not None
        return int(self.redis_server.process.pid)

    def redis_up(self) -> bool:
        return self.redis_server.running()

    # --- the processes ------------------------------------------------------------------------

    def pool_children(self) -> dict[str, list[int]]:
        """Each worker's prefork pool processes (children of its main process)."""
        return {name: _children_of(child.popen.pid) for name, child in self.workers.items() if child.alive()}

    @staticmethod
    def signal_all(pids: list[int], signum: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def wait_for_pools(self, sizes: dict[str, int], timeout: float = 60.0) -> None:
        """Until every worker has its pool back at ``sizes`` processes, none of them the killed ones."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.pool_children()
            if all(len(now.get(name, [])) >= size for name, size in sizes.items()):
                return
            time.sleep(0.1)
        raise BenchError(f"worker pools did not come back to {sizes} within {timeout:.0f}s: {self.pool_children()}")

    def processes(self) -> list[Child]:
        return [c for c in (self.api, *self.workers.values(), *self.beats) if c is not None]

    def dead(self) -> list[str]:
        """Processes of the stack that have exited (a fault must never kill one)."""
        return [f"{c.name} (pid {c.popen.pid}, exit {c.popen.returncode})" for c in self.processes() if not c.alive()]

    def heal(self) -> list[str]:
        """Restart whatever is down (servers first); what was restarted."""
        healed = []
        if not self.redis_up():
            self.start_redis()
            healed.append("redis")
        if not self.postgres_up():
            self.start_postgres()
            healed.append("postgres")
        if self.api is not None and not self.api.alive():
            self.start_api()
            self.api = self.children[-1]
            healed.append("api")
        for name, child in list(self.workers.items()):
            if not child.alive():
                self.start_worker(name)
                healed.append(name)
        for child in list(self.beats):
            if not child.alive():
                self.beats.remove(child)
        if not self.beats:
            self.start_beat()
            healed.append("beat")
        return healed

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.api_url}/readyz", timeout=3).status_code == 200:
                    return
            time.sleep(0.25)
        raise BenchError(f"the API did not answer /readyz 200 within {timeout:.0f}s")

    # --- reading -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "postgres_port": self.postgres.port,
            "redis_port": self.redis_server.port,
            "workers": sorted(self.workers),
            "beat": "on",
            "overrides": self.overrides,
            "timers": self.timers().__dict__,
        }

    def timers(self) -> Timers:
        """The recovery clocks of the settings every process of this stack runs with."""
        from app.jobs.types import job_type
        from config.settings import Settings

        settings = Settings.from_env(self.env)
        lease = getattr(settings, "job_lease_seconds", None)  # a lease separate from the time limit
        if not lease:
            lease = job_type("booking.create").time_limit + settings.job_lease_grace_seconds
        return Timers(
            republish_s=float(settings.job_republish_after_seconds),
            relay_s=float(settings.relay_interval_seconds),
            lease_s=float(lease),
        )

    @staticmethod
    def log_lines_since(children: list[Child], since_bytes: dict[str, int], needles: tuple[str, ...]) -> int:
        """How many lines holding every one of ``needles`` these children logged after the given offsets."""
        count = 0
        for child in children:
            with contextlib.suppress(OSError), open(child.log_path, "rb") as log:
                log.seek(since_bytes.get(str(child.log_path), 0))
                lines = log.read().decode(errors="replace").splitlines()
                count += sum(1 for line in lines if all(needle in line for needle in needles))
        return count

    @staticmethod
    def log_offsets(children: list[Child]) -> dict[str, int]:
        offsets = {}
        for child in children:
            with contextlib.suppress(OSError):
                offsets[str(child.log_path)] = child.log_path.stat().st_size
        return offsets

    def sql_retry(self, query: str, params: Any = None, timeout: float = 60.0) -> list[tuple[Any, ...]]:
        """``sql`` that waits out a PostgreSQL that is still coming back."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.sql(query, params)
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
