"""A child process in a process group of its own, its output in a log file.

Readiness is waited for on a real condition (a line in its log, an HTTP 200), never a fixed sleep.
Stopping signals the whole group, so a Celery worker's pool children and gunicorn's workers go with
their main process: SIGTERM (a warm shutdown) and, if the group lingers, SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devstack.env import ROOT
from devstack.net import StackError, StackTimeout


class Process:
    """``argv`` started in ``ROOT`` with ``env``, stdout and stderr appended to ``log_path``."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:  # the child holds its own copy of the descriptor
            self.popen = subprocess.Popen(
                self.argv,
                env=dict(env),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def check_alive(self) -> None:
        if not self.alive():
            raise StackError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        """Until ``needle`` appears in the log; StackError if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            self.check_alive()
            time.sleep(0.1)
        raise StackTimeout(f"{self.name} did not log {needle!r} within {timeout:.0f}s:\n{self.tail()}")

    def wait_for_http(self, url: str, timeout: float = 60.0) -> None:
        """Until ``url`` answers 200; StackError if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:  # (S310: our own http:// URL)
                    return
            if time.monotonic() > deadline:
                raise StackTimeout(f"{self.name}: {url} did not answer 200 within {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.1)

    def json_lines(self) -> list[dict[str, Any]]:
        """The JSON objects it logged, one per line (other lines skipped)."""
        return read_json_lines(self.log_path)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the whole group (warm shutdown), SIGKILL it if it lingers."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and every child, no cleanup."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
    return lines
