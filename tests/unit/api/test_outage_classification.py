"""Specification of ``app.api.errors.outage_of``: which failures are an outage (503), which a bug (500)."""

from __future__ import annotations

import kombu.exceptions
import psycopg2
import psycopg2.errors
import pytest
import redis.exceptions
import sqlalchemy.exc
from limits.errors import StorageError

from app.api.errors import outage_of


def wrapped(orig: BaseException) -> sqlalchemy.exc.DBAPIError:
    """What SQLAlchemy raises around a driver error."""
    return sqlalchemy.exc.DBAPIError.instance("SELECT 1", {}, orig, psycopg2.Error)


def caused_by(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (wrapped(psycopg2.OperationalError("connection refused")), "postgres"),
        (wrapped(psycopg2.errors.AdminShutdown("terminating connection")), "postgres"),
        (wrapped(psycopg2.errors.CannotConnectNow("the database system is starting up")), "postgres"),
        (wrapped(psycopg2.errors.QueryCanceled("canceling statement due to statement timeout")), "postgres"),
        (wrapped(psycopg2.InterfaceError("connection already closed")), "postgres"),
        (sqlalchemy.exc.TimeoutError("QueuePool limit reached"), "postgres"),
        (sqlalchemy.exc.DisconnectionError("gone"), "postgres"),
        (psycopg2.OperationalError("bare driver error"), "postgres"),
        (redis.exceptions.ConnectionError("Error 111 connecting"), "redis"),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), "redis"),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), "redis"),
        (StorageError(redis.exceptions.ConnectionError("refused")), "redis"),  # flask-limiter's storage
        (caused_by(RuntimeError("while publishing"), kombu.exceptions.OperationalError("no broker")), "broker"),
        (caused_by(KeyError("x"), redis.exceptions.ConnectionError("refused")), "redis"),
    ],
)
def test_an_unreachable_dependency_is_an_outage(exc, dependency):
    assert outage_of(exc) == dependency


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("a bug"),
        ValueError("A string literal cannot contain NUL (0x00) characters."),
        wrapped(psycopg2.errors.InvalidTimeZoneDisplacementValue("time zone displacement out of range")),
        wrapped(psycopg2.errors.UniqueViolation("duplicate key")),
        wrapped(psycopg2.errors.UndefinedColumn("column does not exist")),
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        StorageError(ValueError("bad")),
    ],
)
def test_everything_else_is_a_bug(exc):
    assert outage_of(exc) is None


def test_a_cycle_in_the_chain_ends():
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert outage_of(first) is None
