"""Specification of ``tests.support.waiting.wait_until``: the waits every integration test uses."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.support.waiting import wait_until


def test_returns_the_first_truthy_value_without_waiting_further():
    answers = iter([0, None, "", 7, 8])
    assert wait_until(lambda: next(answers), timeout=5, interval=0.001) == 7
    assert next(answers) == 8


def test_fails_after_the_timeout_with_the_message_and_the_last_value():
    calls = itertools.count()
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"the job never finished \(waited 0.2 s; last value \[\]\)"):
        wait_until(
            lambda: [] if next(calls) >= 0 else None, timeout=0.2, interval=0.01, message="the job never finished"
        )
    assert time.monotonic() - started >= 0.2
    assert next(calls) > 2  # it kept polling until the deadline


def test_the_message_may_be_computed_when_it_fails():
    with pytest.raises(AssertionError, match="seen 3"):
        wait_until(lambda: False, timeout=0.01, interval=0.005, message=lambda: "seen 3")
