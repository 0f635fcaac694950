"""Ports on 127.0.0.1: a free one, whether one is open, and waiting for a condition with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


class StackError(RuntimeError):
    """A server or process of the stack could not be started, or misbehaved."""


class StackTimeout(StackError, TimeoutError):
    """A readiness wait ran out of time."""


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; a race with another process is possible but rare)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it is true; ``StackTimeout("<what> within <timeout>s")`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StackTimeout(f"{what} within {timeout:.0f}s")
        time.sleep(interval)


def wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    wait_until(lambda: port_open(port), timeout, f"{what} did not open port {port}", interval=0.1)


def wait_for_port_closed(port: int, what: str, timeout: float = 30.0) -> None:
    wait_until(lambda: not port_open(port), timeout, f"{what} did not close port {port}")


def say(message: str) -> None:
    """Progress lines of the stack, on stdout (the bench moves them to stderr)."""
    print(f"[stack] {message}", flush=True)
