"""argon2id password hashing (argon2-cffi), capped per process.

- ``verify`` hashes against a fixed dummy when the account does not exist, so an unknown e-mail
  costs the same time as a wrong password and login timing does not reveal who has an account.
- ``needs_rehash`` tells whether a stored hash was made under other parameters; login re-hashes
  it then, so raising the cost protects existing accounts at their next login.
- At most ``concurrency`` hashes run at once in a process (a semaphore). argon2 at production
  cost takes tens of milliseconds of several cores; without a cap, a few hundred logins a second
  from a small botnet (each within its per-address limit) would queue every gunicorn thread behind
  hashing and the API, health checks included, would stop answering. So a request that finds no
  slot free does not wait: it answers ``503 service-unavailable`` with ``Retry-After`` at once,
  having checked and counted nothing. Outside a request (a CLI command, a job) a hash waits for
  its slot instead: nobody is there to retry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_request_context

from app.problems import Problem

EXTENSION_KEY = "estacionate.passwords"
#: What a refused request is told: a slot frees within one hash, well under a second.
RETRY_AFTER_SECONDS = 1


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int, *, concurrency: int = 2) -> None:
        if concurrency < 1:
            raise ValueError("at least one password hash must be allowed at a time")
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._holder = threading.local()
        self.concurrency = concurrency
        self._dummy_hash = self._hasher.hash("estacionate-dummy-password-for-timing")

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the process's hashing slots; in a request, 503 at once if none is free.

        Re-entrant per thread: a login takes its slot first, before it looks anything up (so a
        refused login costs next to nothing), and the hashes it then computes use that slot.
        """
        if getattr(self._holder, "held", False):
            yield
            return
        if has_request_context():
            if not self._slots.acquire(blocking=False):
                raise Problem(
                    "service-unavailable",
                    "Too many sign-ins are being checked right now; try again in a moment.",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
        else:
            self._slots.acquire()
        self._holder.held = True
        try:
            yield
        finally:
            self._holder.held = False
            self._slots.release()

    def hash(self, password: str) -> str:
        with self.slot():
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; an absent hash (unknown or anonymized user) still costs a hash."""
        with self.slot():
            try:
                self._hasher.verify(password_hash or self._dummy_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        return password_hash is not None

    def upgraded(self, password_hash: str, password: str) -> str | None:
        """A new hash of a just-verified password whose stored hash has old parameters, else None.

        Opportunistic: if no slot is free right now it gives up (None) rather than fail or delay the
        login that asked; the next login tries again.
        """
        if not self.needs_rehash(password_hash):
            return None
        if getattr(self._holder, "held", False):
            return self._hasher.hash(password)
        if not self._slots.acquire(blocking=False):
            return None
        try:
            return self._hasher.hash(password)
        finally:
            self._slots.release()

    def needs_rehash(self, password_hash: str) -> bool:
        """True if the hash was made under other parameters (cheap: it only parses the hash)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


def current_passwords() -> Passwords:
    return current_app.extensions[EXTENSION_KEY]
