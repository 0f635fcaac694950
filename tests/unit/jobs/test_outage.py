"""``is_connection_failure``: a dead connection is an outage to wait out; a failed statement is not."""

import psycopg2
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, ProgrammingError

from app.jobs.outage import is_connection_failure


class ServerError(Exception):
    """What psycopg2 raises for an error the server sent: it carries the SQLSTATE."""

    def __init__(self, pgcode):
        super().__init__(pgcode)
        self.pgcode = pgcode


def wrapped(cls, orig, *, invalidated=False):
    return cls("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        # The client library failed: refused connection, server closed the socket (pg_ctl -m immediate).
        (wrapped(OperationalError, psycopg2.OperationalError("connection refused")), True),
        (wrapped(InterfaceError, psycopg2.InterfaceError("connection already closed")), True),
        # SQLAlchemy saw the disconnect and invalidated the connection.
        (wrapped(DBAPIError, ServerError(None), invalidated=True), True),
        (wrapped(OperationalError, ServerError("XX000"), invalidated=True), True),
        # The server going away or not ready yet.
        (wrapped(OperationalError, ServerError("57P01")), True),  # admin_shutdown
        (wrapped(OperationalError, ServerError("57P02")), True),  # crash_shutdown
        (wrapped(OperationalError, ServerError("57P03")), True),  # cannot_connect_now (starting up)
        (wrapped(OperationalError, ServerError("08006")), True),  # connection_failure
        # The statement failed: an ordinary failed attempt.
        (wrapped(OperationalError, ServerError("57014")), False),  # statement timeout
        (wrapped(OperationalError, ServerError("40P01")), False),  # deadlock
        (wrapped(OperationalError, ServerError("40001")), False),  # serialization failure
        (wrapped(IntegrityError, ServerError("23505")), False),  # unique violation
        (wrapped(ProgrammingError, ServerError(None)), False),  # a bug, not an outage
        (RuntimeError("boom"), False),
        (ConnectionError("redis"), False),
    ],
)
def test_connection_failures_are_told_apart_from_failed_statements(exc, outage):
    assert is_connection_failure(exc) is outage
