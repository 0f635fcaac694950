"""PostgreSQL and Redis as a run chooses them: the URLs the environment gives, or embedded servers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from devstack.net import say
from devstack.postgres import EmbeddedPostgres
from devstack.redis import EmbeddedRedis, Persistence

# Development ports match config.settings.DEV_DATABASE_URL / DEV_REDIS_URL. All sit below Linux's
# ephemeral range (32768-60999), so an outgoing connection can never be holding one of them.
RUN_PORTS = {"postgres": 25432, "redis": 26379}
TEST_PORTS = {"postgres": 25433, "redis": 26380}


def ports(defaults: Mapping[str, int], environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Embedded server ports; ``EMBEDDED_PG_PORT`` / ``EMBEDDED_REDIS_PORT`` move them."""
    return {
        "postgres": int(environ.get("EMBEDDED_PG_PORT", defaults["postgres"])),
        "redis": int(environ.get("EMBEDDED_REDIS_PORT", defaults["redis"])),
    }


class Servers:
    """An embedded PostgreSQL and Redis under ``data_dir``, started only where no URL is given."""

    def __init__(self, data_dir: Path, ports: Mapping[str, int], persistence: Persistence = "none") -> None:
        self.postgres = EmbeddedPostgres(data_dir, ports["postgres"])
        self.redis = EmbeddedRedis(data_dir, ports["redis"], persistence)
        self.embedded = {"postgres": False, "redis": False}

    def urls(self, given: Mapping[str, str] = os.environ) -> dict[str, str]:
        """``DATABASE_URL`` and ``REDIS_URL``: each from ``given`` if set there, else from the
        embedded server, started now. ``given={}`` always starts both (a run that stops or kills its
        servers must never be handed ones it does not own)."""
        urls = {}
        if given.get("DATABASE_URL"):
            say("using DATABASE_URL from the environment")
            urls["DATABASE_URL"] = given["DATABASE_URL"]
        else:
            urls["DATABASE_URL"] = self.postgres.start()
            self.embedded["postgres"] = True
        if given.get("REDIS_URL"):
            say("using REDIS_URL from the environment")
            urls["REDIS_URL"] = given["REDIS_URL"]
        else:
            urls["REDIS_URL"] = self.redis.start()
            self.embedded["redis"] = True
        return urls

    def stop(self) -> None:
        """Redis first, then PostgreSQL; each stops only if this run started it."""
        self.redis.stop()
        self.postgres.stop()
