"""The load a fault lands on: bookings and pings from client threads that keep going through it.

Each thread is a careful client, as API.md describes one:

- Every job submission carries an ``Idempotency-Key``, and a retried submission reuses it, so however
  often it is retried it creates at most one job.
- 503, 429 and 409 ``idempotency-request-in-flight``: wait ``Retry-After`` (0.2-5 s), try again.
- 401 (Redis came back empty, so the session is gone): log in again, try again.
- 500, any other 5xx, or no answer at all: recorded (each one fails the suite), wait 1 s, try again
  with the same key.
- Anything else is unexpected: recorded, and the operation is given up.

Every HTTP answer is recorded with the time it was asked for, so a scenario can count the answers
during its fault.

- Bookings: ``booking_threads`` threads take operations from one ``Plan`` paced at ``rate`` per
  second: each a block of its own, and every ``contend_every``-th slot a group of ``group``
  residents asking for one block at the same moment (exactly one may win).
- Pings: ``ping_threads`` threads submit a ``system.ping`` and long-poll it
  (``GET /v1/jobs/{id}?wait=``) for at most ``PING_AWAIT_S``, then submit the next.

Bounded in count and time: the plan holds as many operations as blocks were made; threads stop
taking new operations when told to, and give up an operation ``patience_s`` after the fault ended.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from bench.checks import booking_body

TERMINAL = frozenset({"succeeded", "failed"})
PING_AWAIT_S = 10.0
#: What a request may take beyond the ``?wait=`` it asked for before it counts as a hang (issue 10:
#: "never a hang past 10 s").
HANG_S = 10.0
#: The client's own timeout: past it the request counts as unanswered.
READ_TIMEOUT_S = 20.0
_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Answer:
    """One HTTP request as the client saw it."""

    at: float
    seconds: float
    #: The HTTP status, or ``"no-answer"`` (refused, reset, timed out).
    status: int | str
    route: str
    wait: float = 0.0

    @property
    def hung(self) -> bool:
        return self.seconds > self.wait + HANG_S


@dataclass
class Accepted:
    """A job the API accepted (202), and what the client asked for."""

    job_id: str
    kind: str  # "booking" | "ping"
    key: str
    resident: int
    first_try_at: float
    accepted_at: float
    block_id: str | None = None
    contended: bool = False


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: list[Answer] = []

    def add(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.at <= end]

    @staticmethod
    def by_status(answers: list[Answer]) -> dict[str, int]:
        counts = Counter(str(a.status) for a in answers)
        return dict(sorted(counts.items()))


class Accounts:
    """Residents' credentials and current tokens; a 401 makes the first thread to see it log in again."""

    def __init__(self, people: list[dict[str, str]], tokens: list[str]) -> None:
        self.people = people
        self.tokens = list(tokens)
        self._locks = [threading.Lock() for _ in people]
        self.logins = 0

    def token(self, index: int) -> str:
        return self.tokens[index]

    def renew(self, index: int, stale: str, client: Client, until: float) -> None:
        with self._locks[index]:
            if self.tokens[index] != stale:
                return  # another thread logged this resident in already
            person = self.people[index]
            body = {"email": person["email"], "password": person["password"]}
            response = client.call("POST", "/v1/auth/login", None, json=body, accept=(200,), until=until)
            if response is not None:
                self.tokens[index] = response.json()["access_token"]
                self.logins += 1


class Client:
    """One thread's HTTP client: its own keep-alive connection, the retry policy above."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.session = self._session()

    @staticmethod
    def _session() -> requests.Session:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
        return session

    def send(
        self, method: str, path: str, *, token: str | None, json: Any = None, key: str | None = None, wait: float = 0
    ) -> requests.Response | None:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        route = f"{method} {_ID.sub('/{id}', path.partition('?')[0])}"
        began = time.time()
        try:
            response: requests.Response | None = self.session.request(
                method, self.load.api_url + path, json=json, headers=headers, timeout=(5, wait + READ_TIMEOUT_S)
            )
            status: int | str = response.status_code  # type: ignore[union-attr]
        except requests.RequestException:
            response, status = None, "no-answer"
            self.session.close()
            self.session = self._session()
        self.load.recorder.add(Answer(began, time.time() - began, status, route, wait))
        return response

    def call(
        self,
        method: str,
        path: str,
        resident: int | None,
        *,
        json: Any = None,
        key: str | None = None,
        wait: float = 0,
        accept: tuple[int, ...],
        until: float,
    ) -> requests.Response | None:
        """Ask until an accepted answer, an unexpected one (None) or ``until``/the load's give-up (None)."""
        accounts = self.load.accounts
        while time.time() < min(until, self.load.give_up_at):
            token = accounts.token(resident) if resident is not None else None
            response = self.send(method, path, token=token, json=json, key=key, wait=wait)
            if response is None or (response.status_code >= 500 and response.status_code != 503):
                time.sleep(1.0)
                continue
            if response.status_code in accept:
                return response
            if response.status_code == 401 and resident is not None and token is not None:
                accounts.renew(resident, token, self, until)
                continue
            if response.status_code in (429, 503) or _in_flight(response):
                time.sleep(_retry_after(response))
                continue
            self.load.unexpected(f"{method} {path} -> {response.status_code}: {response.text[:200]}")
            return None
        return None


def _in_flight(response: requests.Response) -> bool:
    if response.status_code != 409:
        return False
    try:
        return str(response.json().get("type", "")).endswith("/idempotency-request-in-flight")
    except ValueError:
        return False


def _retry_after(response: requests.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After") or 1)
    except ValueError:
        seconds = 1.0
    return min(5.0, max(0.2, seconds))


@dataclass(frozen=True)
class Op:
    index: int
    due: float
    block_id: str
    resident: int
    key: str
    contended: bool


class Plan:
    """Booking operations in due order: distinct blocks, and contended groups on one block."""

    def __init__(
        self,
        *,
        distinct: list[str],
        contended: list[str],
        residents: int,
        rate: float,
        contend_every: int,
        group: int,
        prefix: str,
    ) -> None:
        self._distinct = deque(distinct)
        self._contended = deque(contended)
        self.residents = residents
        self.rate = rate
        self.contend_every = contend_every
        self.group = min(group, residents)
        self.prefix = prefix
        self.start = time.time()
        self._slot = 0
        self._index = 0
        self._pending: deque[Op] = deque()
        self._lock = threading.Lock()
        self.exhausted = False

    def take(self) -> Op | None:
        with self._lock:
            if not self._pending:
                self._fill()
            return self._pending.popleft() if self._pending else None

    def _fill(self) -> None:
        due = self.start + self._slot / self.rate
        contend = self.contend_every > 0 and self._slot % self.contend_every == self.contend_every - 1
        self._slot += 1
        if contend and self._contended:
            block, members, contended = self._contended.popleft(), self.group, True
        elif self._distinct:
            block, members, contended = self._distinct.popleft(), 1, False
        else:
            self.exhausted = True
            return
        for _ in range(members):
            resident = self._index % self.residents
            key = f"{self.prefix}-book-{self._index}"
            self._pending.append(Op(self._index, due, block, resident, key, contended))
            self._index += 1


@dataclass
class Load:
    """The client threads of one scenario, and what they saw."""

    api_url: str
    accounts: Accounts
    plan: Plan
    booking_residents: list[int]
    ping_residents: list[int]
    booking_threads: int
    ping_threads: int
    prefix: str
    recorder: Recorder = field(default_factory=Recorder)
    accepted: list[Accepted] = field(default_factory=list)
    #: Operations given up (the fault outlasted the patience, or an unexpected answer).
    abandoned: list[str] = field(default_factory=list)
    unexpected_answers: list[str] = field(default_factory=list)
    #: Wall time after which no operation is tried any more (set when the fault ends).
    give_up_at: float = float("inf")

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- control ---------------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self.booking_threads):
            self._threads.append(threading.Thread(target=self._book, name=f"chaos-book-{n}", daemon=True))
        for n in range(self.ping_threads):
            self._threads.append(threading.Thread(target=self._ping, args=(n,), name=f"chaos-ping-{n}", daemon=True))
        for thread in self._threads:
            thread.start()

    def fault_ended(self, at: float, patience_s: float) -> None:
        self.give_up_at = at + patience_s

    def stop(self, timeout: float) -> bool:
        """No new operations; wait for those in flight (each bounded by ``give_up_at``). All done?"""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    # --- what happened -------------------------------------------------------------------------

    def unexpected(self, what: str) -> None:
        with self._lock:
            self.unexpected_answers.append(what)

    def _accept(self, accepted: Accepted) -> None:
        with self._lock:
            self.accepted.append(accepted)

    def _abandon(self, key: str) -> None:
        with self._lock:
            self.abandoned.append(key)

    # --- the threads -------------------------------------------------------------------------

    def _book(self) -> None:
        client = Client(self)
        while not self._stop.is_set():
            op = self.plan.take()
            if op is None:
                return
            if self._stop.wait(max(0.0, op.due - time.time())):
                return
            resident = self.booking_residents[op.resident % len(self.booking_residents)]
            first_try = time.time()
            response = client.call(
                "POST",
                "/v1/bookings",
                resident,
                json=booking_body(op.block_id, op.index),
                key=op.key,
                accept=(202,),
                until=float("inf"),
            )
            if response is None:
                self._abandon(op.key)
                continue
            self._accept(
                Accepted(
                    response.json()["job_id"],
                    "booking",
                    op.key,
                    resident,
                    first_try,
                    time.time(),
                    op.block_id,
                    op.contended,
                )
            )

    def _ping(self, thread: int) -> None:
        client = Client(self)
        resident = self.ping_residents[thread % len(self.ping_residents)]
        count = 0
        while not self._stop.is_set():
            key = f"{self.prefix}-ping-{thread}-{count}"
            count += 1
            first_try = time.time()
            response = client.call(
                "POST", "/v1/system/ping", resident, json={}, key=key, accept=(202,), until=float("inf")
            )
            if response is None:
                self._abandon(key)
                continue
            job_id = response.json()["job_id"]
            self._accept(Accepted(job_id, "ping", key, resident, first_try, time.time()))
            until = time.time() + PING_AWAIT_S
            while time.time() < until and not self._stop.is_set():
                wait = max(1, min(5, int(until - time.time())))
                polled = client.call(
                    "GET", f"/v1/jobs/{job_id}?wait={wait}", resident, wait=wait, accept=(200,), until=until
                )
                if polled is None or polled.json().get("status") in TERMINAL:
                    break
            self._stop.wait(0.2)
