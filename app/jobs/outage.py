"""Telling "the database connection failed" apart from "the statement failed".

A job whose transaction died with its connection (PostgreSQL stopped, restarting, unreachable)
did nothing wrong: it is retried promptly without counting an attempt (``app/jobs/runner.py``).
Anything else (a deadlock, a statement timeout, a bug) is an ordinary failed attempt.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

#: SQLSTATEs the server sends while going away or coming back: admin/crash shutdown, cannot
#: connect now (starting up, in recovery). Class 08 (connection exception) is matched as a class.
_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})


def is_connection_failure(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "pgcode", None)
    if code is None:
        # No SQLSTATE: the client library failed (refused connection, closed socket), not the server.
        return isinstance(exc, OperationalError | InterfaceError)
    return code.startswith("08") or code in _GOING_AWAY
