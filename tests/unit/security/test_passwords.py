"""Specification of password hashing: argon2id, a dummy hash for unknown accounts, re-hashing when
the parameters change, and a per-process cap on concurrent hashes that requests never queue behind."""

from __future__ import annotations

import threading
import time

import pytest
from argon2 import PasswordHasher
from flask import Flask

from app.problems import Problem
from app.security.passwords import Passwords
from tests.support.waiting import wait_until

app = Flask(__name__)


def cheap(concurrency: int = 2) -> Passwords:
    return Passwords(time_cost=1, memory_kib=8, parallelism=1, concurrency=concurrency)


def test_verify_accepts_the_password_and_refuses_others_and_absent_hashes():
    passwords = cheap()
    stored = passwords.hash("correct-horse-battery")
    assert passwords.verify(stored, "correct-horse-battery") is True
    assert passwords.verify(stored, "wrong") is False
    assert passwords.verify(None, "correct-horse-battery") is False  # still costs a hash (the dummy)
    assert passwords.verify("not-a-hash", "x") is False


def test_a_hash_under_other_parameters_needs_rehash_and_a_current_one_does_not():
    passwords = cheap()
    older = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1).hash("pw")
    assert passwords.needs_rehash(older) is True
    assert passwords.needs_rehash(passwords.hash("pw")) is False


def holding_the_only_slot(passwords: Passwords) -> tuple[threading.Event, threading.Thread]:
    """Another thread takes the process's slot and keeps it until the returned event is set."""
    held, done = threading.Event(), threading.Event()

    def holder() -> None:
        with passwords.slot():
            held.set()
            done.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    return done, thread


def test_a_request_that_finds_every_slot_taken_is_refused_at_once_with_503():
    passwords = cheap(concurrency=1)
    done, holder = holding_the_only_slot(passwords)
    try:
        with app.test_request_context():
            started = time.perf_counter()
            with pytest.raises(Problem) as refused:
                passwords.verify(None, "x")
            assert time.perf_counter() - started < 0.5  # refused, not queued
    finally:
        done.set()
        holder.join()
    assert refused.value.slug == "service-unavailable" and refused.value.status == 503
    assert int(refused.value.headers["Retry-After"]) >= 1
    with app.test_request_context():
        assert passwords.verify(None, "x") is False  # the slot is free again


def test_a_slot_taken_first_serves_every_hash_of_that_request():
    passwords = cheap(concurrency=1)
    older = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1).hash("pw")
    with app.test_request_context(), passwords.slot():  # what login does before looking anything up
        assert passwords.verify(older, "pw") is True
        assert passwords.upgraded(older, "pw") is not None
        assert passwords.verify(passwords.hash("new-password"), "new-password") is True


def test_outside_a_request_a_hash_waits_for_its_slot_instead_of_failing():
    passwords = cheap(concurrency=1)
    held, release, released_at, done_at = threading.Event(), threading.Event(), [], []

    def holder() -> None:
        with passwords.slot():
            held.set()
            assert release.wait(10)
            released_at.append(time.perf_counter())

    def hasher() -> None:  # a CLI command or a job: waits its turn
        passwords.hash("correct-horse-battery")
        done_at.append(time.perf_counter())

    threads = [threading.Thread(target=holder), threading.Thread(target=hasher)]
    threads[0].start()
    assert held.wait(5)
    threads[1].start()
    # The positive marker: the hasher is queued on the slot (the semaphore has a waiter).
    wait_until(lambda: len(passwords._slots._cond._waiters) == 1, timeout=5, interval=0.005)
    assert done_at == []
    release.set()
    for thread in threads:
        thread.join(10)
    assert done_at and done_at[0] >= released_at[0]


def test_the_cap_must_allow_at_least_one_hash():
    with pytest.raises(ValueError):
        cheap(concurrency=0)


def test_an_outdated_hash_is_upgraded_only_when_a_slot_is_free_right_now():
    passwords = cheap(concurrency=1)
    older = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1).hash("pw")
    fresh = passwords.upgraded(older, "pw")
    assert fresh is not None and passwords.verify(fresh, "pw") and not passwords.needs_rehash(fresh)
    assert passwords.upgraded(fresh, "pw") is None  # already current
    done, holder = holding_the_only_slot(passwords)
    try:
        with app.test_request_context():
            assert passwords.upgraded(older, "pw") is None  # busy: the login goes on, the next one upgrades
    finally:
        done.set()
        holder.join()
