"""Command lines: the Procfile's (what production runs), and Celery worker / beat ones built from them.

The bench and the fault suite start exactly what the Procfile says; the pytest fixtures start
workers of the same command with the concurrency and queues a test asks for.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.env import BIN, ROOT
from devstack.net import StackError

PROCFILE = ROOT / "Procfile"
CELERY_APP = "workers.celery_app:celery"


def _entries() -> list[tuple[str, str]]:
    entries = []
    for line in PROCFILE.read_text().splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            entries.append((key.strip(), command.strip()))
    return entries


def procfile_argv(name: str, env: Mapping[str, str]) -> list[str]:
    """The Procfile's command for ``name``, with ``${VAR:-default}`` expanded from ``env``."""
    for key, command in _entries():
        if key == name:
            expanded = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m.group(1)) or m.group(2) or "", command)
            argv = shlex.split(expanded)
            if (BIN / argv[0]).exists():
                argv[0] = str(BIN / argv[0])
            return argv
    raise StackError(f"the Procfile has no {name!r} process")


def procfile_names(kind: str) -> list[str]:
    """Procfile entries whose command runs ``celery ... <kind>`` (``worker`` or ``beat``), in file order."""
    names = []
    for key, command in _entries():
        words = command.split()
        if words and Path(words[0]).name == "celery" and kind in words:
            names.append(key)
    return names


def without_options(argv: Sequence[str], *options: str) -> list[str]:
    """``argv`` without the given options and their values (``-Q a,b`` and ``--queues a,b`` alike)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif any(arg.startswith(f"{option}=") for option in options if option.startswith("--")):
            continue
        else:
            out.append(arg)
    return out


def celery_worker(
    argv: Sequence[str], *, hostname: str, app: str | None = None, queues: Sequence[str] | None = None
) -> list[str]:
    """A Celery worker command line with its node name, and optionally another app or other queues.

    ``queues=None`` drops the command's ``-Q``: one worker serving every queue (the bench measures
    one worker of fixed size serving everything; the Procfile splits production's by queue).
    """
    out = without_options(argv, "-Q", "--queues", "-n", "--hostname")
    if app is not None:
        out[out.index("-A") + 1] = app
    return [*out, "-n", hostname, *(["-Q", ",".join(queues)] if queues else [])]


def worker_argv(
    *, hostname: str, concurrency: int = 2, queues: Sequence[str] | None = None, app: str = CELERY_APP
) -> list[str]:
    """A prefork worker of ``app`` with ``concurrency`` children, on every queue or only ``queues``."""
    return [
        str(BIN / "celery"),
        "-A",
        app,
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        hostname,
        *(["-Q", ",".join(queues)] if queues else []),
    ]


def beat_argv(schedule: Path, app: str = CELERY_APP) -> list[str]:
    return [str(BIN / "celery"), "-A", app, "beat", "--loglevel", "INFO", "--schedule", str(schedule)]
