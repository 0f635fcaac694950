"""The load generator: an HTTP client for the API and a closed-loop concurrent runner.

Closed loop: ``concurrency`` threads each carry one operation at a time (submit, then await the
outcome) until ``total`` operations have been taken. The figure is completed operations divided by
the wall time from the common start to the last completion; latencies are per operation.

Burst (``burst``): ``concurrency`` threads first submit all ``total`` jobs as fast as they are
accepted, then the same threads await them, in submission order, until every one is terminal:
"N concurrent submissions" as a crowd pressing "book" at once produces them. Its figure is the wall
time from the first submission to the last terminal state seen.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

#: Statuses after which a job never changes again.
TERMINAL = frozenset({"succeeded", "failed"})


class OperationError(RuntimeError):
    """One measured operation went wrong (counted, reported, never retried silently)."""


@dataclass
class Measurement:
    total: int
    concurrency: int
    elapsed_s: float
    latencies_s: list[float]
    results: list[Any]
    errors: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies_s)

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, p: float) -> float | None:
        """Nearest-rank percentile of the operation latencies, in milliseconds."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return round(ordered[rank - 1] * 1000, 2)

    def latency_summary(self) -> dict[str, float | None]:
        return {"p50": self.percentile_ms(50), "p90": self.percentile_ms(90), "p99": self.percentile_ms(99)}


def closed_loop(total: int, concurrency: int, operation: Callable[[int], Any]) -> Measurement:
    """Run ``operation(i)`` for i in range(total) on ``concurrency`` threads, one at a time each."""
    indexes = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    results: list[Any] = [None] * total
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1)

    def next_index() -> int | None:
        with lock:
            return next(indexes, None)

    def loop() -> None:
        start.wait()
        while (index := next_index()) is not None:
            began = time.perf_counter()
            try:
                results[index] = operation(index)
            except Exception as exc:
                with lock:
                    errors.append(f"#{index}: {exc!r}"[:500])
                continue
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=loop, name=f"bench-client-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Measurement(total, concurrency, time.perf_counter() - began, latencies, results, errors)


def burst(
    total: int,
    concurrency: int,
    submit: Callable[[int], Any],
    wait: Callable[[int, Any], Any],
) -> Measurement:
    """Submit ``total`` jobs from ``concurrency`` threads, then await them all; see the module doc.

    ``submit(i)`` returns what ``wait(i, submitted)`` needs; the results are what ``wait`` returns.
    Latencies run from each job's submission to the moment its terminal state was seen.
    """
    began = time.perf_counter()
    submitted_at: list[float] = [0.0] * total

    def timed_submit(index: int) -> Any:
        submitted_at[index] = time.perf_counter()
        return submit(index)

    submitted = closed_loop(total, concurrency, timed_submit)
    done_at: list[float | None] = [None] * total

    def timed_wait(index: int) -> Any:
        accepted = submitted.results[index]
        if accepted is None:
            raise OperationError(f"#{index} was never accepted")
        result = wait(index, accepted)
        done_at[index] = time.perf_counter()
        return result

    awaited = closed_loop(total, concurrency, timed_wait)
    finished = [t for t in done_at if t is not None]
    elapsed = (max(finished) if finished else time.perf_counter()) - began
    latencies = [end - submitted_at[i] for i, end in enumerate(done_at) if end is not None]
    errors = [f"submit {e}" for e in submitted.errors] + [f"await {e}" for e in awaited.errors]
    return Measurement(total, concurrency, elapsed, latencies, awaited.results, errors)


def paced(total: int, concurrency: int, rate: float, operation: Callable[[int], Any]) -> Measurement:
    """Open loop: operation ``i`` is due at ``start + i / rate``, whoever is free sends it.

    Latency runs from when the operation was due (not when a thread got to it), so a server that
    falls behind shows its queueing delay instead of hiding it (no coordinated omission).
    """
    lock = threading.Lock()
    indexes = iter(range(total))
    latencies: list[float] = []
    results: list[Any] = [None] * total
    errors: list[str] = []
    began = time.perf_counter() + 0.05

    def loop() -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            due = began + index / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            try:
                results[index] = operation(index)
            except Exception as exc:
                with lock:
                    errors.append(f"#{index}: {exc!r}"[:500])
                continue
            with lock:
                latencies.append(time.perf_counter() - due)

    threads = [threading.Thread(target=loop, name=f"bench-paced-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Measurement(total, concurrency, time.perf_counter() - began, latencies, results, errors)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """The HTTP API as a client sees it: one keep-alive connection per client thread.

    Requests carry ``token`` (the default identity) unless a call passes a ``token`` of its own:
    one client can then speak for many residents, each request as one of them.
    """

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        #: Answers 429/503 that were retried after their Retry-After (nothing had been done).
        self.retried = 0
        #: ``GET ...?wait=`` requests sent by ``await_job`` (a capped long-poll answers at once: more polls).
        self.polls = 0

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def request(
        self, method: str, path: str, *, expect: int, timeout: float = 30.0, attempts: int = 5, **kwargs: Any
    ) -> requests.Response:
        """One request; 429 and 503 (nothing was done) are retried after their Retry-After."""
        headers = kwargs.pop("headers", None) or {}
        if self.token and "Authorization" not in headers:
            headers = {**headers, **bearer(self.token)}
        for _ in range(attempts):
            response = self.session().request(
                method, self.base_url + path, timeout=(5, timeout), headers=headers, **kwargs
            )
            if response.status_code in (429, 503):
                with self._lock:
                    self.retried += 1
                time.sleep(min(5.0, float(response.headers.get("Retry-After") or 1)))
                continue
            if response.status_code != expect:
                raise OperationError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
            return response
        raise OperationError(f"{method} {path} still {response.status_code} after {attempts} attempts")

    def login(self, email: str, password: str, *, totp_secret: str | None = None, default: bool = True) -> str:
        """Log in (with the second factor when ``totp_secret`` is given); ``default`` keeps the token."""
        response = self.request("POST", "/v1/auth/login", expect=200, json={"email": email, "password": password})
        answer = response.json()
        if answer.get("access_token") is None:
            if not (answer.get("mfa_required") and totp_secret):
                raise OperationError(f"login of a benchmark user needs a step it cannot take: {sorted(answer)}")
            import pyotp  # the application's own dependency

            code = pyotp.TOTP(totp_secret).now()
            body = {"mfa_token": answer["mfa_token"], "code": code}
            answer = self.request("POST", "/v1/auth/mfa/verify", expect=200, json=body).json()
        token = str(answer["access_token"])
        if default:
            self.token = token
        return token

    @staticmethod
    def _headers(headers: dict[str, str] | None, token: str | None) -> dict[str, str] | None:
        if token is None:
            return headers
        return {**(headers or {}), **bearer(token)}

    def submit(
        self, path: str, body: dict[str, Any], *, headers: dict[str, str] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """POST a job; its 202 document (``job_id``, ``status_url``)."""
        return self.request("POST", path, expect=202, json=body, headers=self._headers(headers, token)).json()

    def await_job(self, status_url: str, *, token: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Long-poll a job's status URL until it is terminal; the final job document."""
        deadline = time.monotonic() + timeout
        while True:
            wait = max(1, min(30, math.ceil(deadline - time.monotonic())))
            with self._lock:
                self.polls += 1
            response = self.request(
                "GET", f"{status_url}?wait={wait}", expect=200, timeout=wait + 15, headers=self._headers(None, token)
            )
            document = response.json()
            if document["status"] in TERMINAL:
                return document
            if time.monotonic() >= deadline:
                raise OperationError(f"job {document['id']} still {document['status']} after {timeout:.0f}s")
            # A long-poll over a cap answered at once: poll again when the server says (as a real client would).
            retry_after = response.headers.get("Retry-After")
            if retry_after:
                time.sleep(min(float(retry_after), max(0.0, deadline - time.monotonic())))

    def submit_and_await(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """POST a job, then long-poll its status URL until it is terminal; the final job document."""
        accepted = self.submit(path, body, headers=headers, token=token)
        return self.await_job(accepted["status_url"], token=token, timeout=timeout)
