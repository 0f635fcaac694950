"""The bench client's adapter for the peer app's booking API (``../shared/peer``).

The same client as ours (``bench.client.Api``: one keep-alive ``requests`` session per client
thread, the same timeouts, the same retry-after-429/503 accounting), speaking the peer's shape:

- **login**: the peer has no login endpoint; its residents carry a stateless HS256 JWT (``sub`` =
  resident id, ``exp``) that someone else issued. ``token`` mints it with the peer's secret, once
  per resident before the measurement, as ``login_residents`` logs ours in before theirs.
- **submit**: ``POST /bookings {block_id, visitor_name, plate}`` answers 202 ``{task_id, status_url}``.
- **poll**: ``GET /tasks/<id>?wait=N`` blocks up to N s on the Celery result and answers
  ``{id, state, result | error}``; ``SUCCESS`` and ``FAILURE`` are terminal. The client long-polls
  with the same ``wait`` values as ``Api.await_job``.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from bench.checks import booking_body
from bench.client import Api, OperationError, bearer

#: Celery states after which a task never changes again.
TERMINAL_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})

#: Longest wait the peer honours (``MAX_WAIT_S`` in its views), the same as our long-poll's.
MAX_WAIT_S = 30


def token(resident_id: str, secret: str, *, ttl: timedelta = timedelta(hours=2)) -> str:
    """The peer's bearer token for a resident: ``sub`` and ``exp``, HS256."""
    claims = {"sub": resident_id, "exp": datetime.now(UTC) + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def booking(block_id: str, index: int) -> dict[str, Any]:
    """Our benchmark's booking request (``bench.checks.booking_body``) in the peer's field names."""
    ours = booking_body(block_id, index)
    return {
        "block_id": ours["availability_block_id"],
        "visitor_name": ours["visitor_name"],
        "plate": ours["vehicle_plate"],
    }


class PeerApi(Api):
    """``bench.client.Api`` for the peer: its submit and its poll; everything else is the same client."""

    def submit_booking(self, body: dict[str, Any], *, token: str) -> dict[str, Any]:
        """POST a booking; the 202 document (``task_id``, ``status_url``)."""
        return self.request("POST", "/bookings", expect=202, json=body, headers=bearer(token)).json()

    def await_task(self, status_url: str, *, token: str, timeout: float = 60.0) -> dict[str, Any]:
        """Long-poll the task until it is terminal; the final task document."""
        deadline = time.monotonic() + timeout
        while True:
            wait = max(1, min(MAX_WAIT_S, math.ceil(deadline - time.monotonic())))
            document = self.request(
                "GET", f"{status_url}?wait={wait}", expect=200, timeout=wait + 15, headers=bearer(token)
            ).json()
            if document["state"] in TERMINAL_STATES:
                return document
            if time.monotonic() >= deadline:
                raise OperationError(f"peer task {document['id']} still {document['state']} after {timeout:.0f}s")

    def book_and_await(self, body: dict[str, Any], *, token: str, timeout: float = 60.0) -> dict[str, Any]:
        """Submit, then long-poll to terminal: one operation of the closed loop, as ``submit_and_await`` is ours."""
        accepted = self.submit_booking(body, token=token)
        return self.await_task(accepted["status_url"], token=token, timeout=timeout)
