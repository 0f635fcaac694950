"""Receivers of our outbound requests that misbehave on purpose, as real local socket servers.

``TrickleReceiver`` accepts a connection, reads what the client sends, then answers one byte at a
time forever: it holds a client exactly as long as the client lets it, which is what a deadline
must bound. It records when each connection opened and when the client closed it.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass

#: The start of an HTTP answer whose header section never ends.
HTTP_TRICKLE = b"HTTP/1.1 200 OK\r\nX-Slow: "
#: A TLS handshake record announcing 16 KiB, of which a byte arrives now and then.
TLS_TRICKLE = b"\x16\x03\x03\x40\x00"


@dataclass
class Connection:
    opened_at: float
    closed_at: float | None = None

    @property
    def held_for(self) -> float | None:
        return None if self.closed_at is None else self.closed_at - self.opened_at


class TrickleReceiver:
    def __init__(self, prefix: bytes = HTTP_TRICKLE, interval: float = 0.2, host: str = "127.0.0.1") -> None:
        self.prefix = prefix
        self.interval = interval
        self.host = host
        self.connections: list[Connection] = []
        self._stop = threading.Event()
        self._server = socket.create_server((host, 0))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def url(self, path: str = "/hook", scheme: str = "http", host: str | None = None) -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def __enter__(self) -> TrickleReceiver:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            record = Connection(opened_at=time.monotonic())
            self.connections.append(record)
            self._spawn(self._trickle, conn, record)

    def _trickle(self, conn: socket.socket, record: Connection) -> None:
        pending = self.prefix
        with conn:
            while not self._stop.is_set():
                readable, _, _ = select.select([conn], [], [], self.interval)
                try:
                    if readable and not conn.recv(65536):
                        break  # the client closed (or shut down) its side
                    if not readable:
                        conn.sendall(pending[:1] if pending else b"a")
                        pending = pending[1:]
                except OSError:
                    break
        record.closed_at = time.monotonic()

    def wait_for(self, count: int, *, closed: bool = False, timeout: float = 30.0) -> list[Connection]:
        """The first ``count`` connections, once they have opened (and, with ``closed``, been closed)."""
        deadline = time.monotonic() + timeout
        while True:
            ready = [c for c in self.connections[:count] if not closed or c.closed_at is not None]
            if len(ready) >= count:
                return self.connections[:count]
            if time.monotonic() > deadline:
                state = [(round(time.monotonic() - c.opened_at, 1), c.held_for) for c in self.connections]
                raise AssertionError(f"wanted {count} connections (closed={closed}) within {timeout}s; have {state}")
            time.sleep(0.05)
