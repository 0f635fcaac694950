"""One unit of work per use case: the only place (with ``app/jobs/runner.py``) that commits or rolls back.

Every use case runs in exactly one unit of work, opened at the edge:

- an HTTP request: every view is wrapped once, when the app is built (``wrap_views``);
- a job: the runner's claim / work / terminal transaction (``app/jobs/runner.py`` binds a
  ``UnitOfWork`` around the handler and commits it together with the job's terminal state);
- a beat task or a CLI command: ``with unit_of_work():`` in the task or command itself.

Helpers and services only add to the session; they never commit or roll back. A side effect
that must happen only once the change is durable (publishing a Celery message, waking
long-pollers, revoking a Redis session the transaction could not keep...) is registered with
``current_unit_of_work().after_commit(fn)``; it runs after a successful commit, never after a
rollback, and a callback that fails is logged and never undoes the commit. ``after_rollback``
registers the compensation of something done outside the database (e.g. a Redis session
created for a login whose audit row could not be committed).

Outcomes:

- the block ends normally: commit, then the ``after_commit`` callbacks;
- it raises a ``Problem`` created with ``keep_changes=True``: commit what was done (the evidence
  of a refusal: a denied check-in's access event, a failed login's audit row), run the callbacks,
  then let the problem answer as usual;
- it raises anything else (any other ``Problem`` included): roll back, run ``after_rollback``.
  A view that *returns* an error response (status >= 400) is rolled back the same way.

A unit of work never nests: opening one inside another is a bug (``RuntimeError``), since an
inner commit would break the outer one's "all or nothing". ``checkpoint()`` is the one
deliberate exception to "one transaction per use case": batch loops (the relay's, retention's)
and a long poll that must not sit idle in a transaction while it waits end the transaction so
far and go on in a fresh one.

``single_statement(stmt)`` is the one way to write *outside* a unit of work: one statement that is
a transaction by itself (PostgreSQL autocommit), for the runner's claim and the events' hand-over.
A single statement is atomic on its own, so this is the same guarantee as ``BEGIN; stmt; COMMIT``
in one round trip instead of three.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import Response, current_app
from sqlalchemy import Engine, create_engine

from app.extensions import db
from app.problems import Problem

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Callback = Callable[[], Any]

_current: ContextVar[UnitOfWork | None] = ContextVar("estacionate_unit_of_work", default=None)


class NoUnitOfWork(RuntimeError):
    """A helper that needs a unit of work was called outside one (a missing edge)."""


class UnitOfWork:
    """The transaction of one use case and the side effects waiting for its commit."""

    def __init__(self, session: Session | None = None) -> None:
        self._session = session
        self._after_commit: list[Callback] = []
        self._after_rollback: list[Callback] = []

    @property
    def session(self) -> Any:
        """The session the use case works in (Flask-SQLAlchemy's scoped session by default)."""
        return self._session if self._session is not None else db.session

    def after_commit(self, callback: Callback) -> Callback:
        """Run ``callback`` once this unit of work has committed (never if it rolls back)."""
        self._after_commit.append(callback)
        return callback

    def after_rollback(self, callback: Callback) -> Callback:
        """Run ``callback`` if this unit of work rolls back (to undo something outside the database)."""
        self._after_rollback.append(callback)
        return callback

    def checkpoint(self) -> None:
        """Commit what was done so far and run its callbacks; the use case goes on in a new transaction."""
        self.session.commit()
        self.committed()

    # The two outcomes, for the edges (this module and the job runner, which commits itself).

    def committed(self) -> None:
        """The transaction committed: run and forget the ``after_commit`` callbacks."""
        callbacks, self._after_commit, self._after_rollback = self._after_commit, [], []
        _run(callbacks, "after_commit")

    def rolled_back(self) -> None:
        """The transaction rolled back: forget the ``after_commit`` callbacks, run ``after_rollback``."""
        callbacks, self._after_commit, self._after_rollback = self._after_rollback, [], []
        _run(callbacks, "after_rollback")

    def rollback(self) -> None:
        """Roll back now; a connection that died (an outage) is already invalidated by SQLAlchemy."""
        try:
            self.session.rollback()
        except Exception:  # the connection is gone; the pool replaces it on the next checkout
            log.debug("rollback failed", exc_info=True)


def _run(callbacks: list[Callback], kind: str) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a side effect never undoes (or fails) what already happened
            log.exception("unit-of-work callback failed", extra={"callback": kind})


def current_unit_of_work() -> UnitOfWork:
    """The unit of work of the running use case; ``NoUnitOfWork`` outside one."""
    uow = _current.get()
    if uow is None:
        raise NoUnitOfWork("no unit of work is open: wrap the use case in unit_of_work() at its edge")
    return uow


def in_unit_of_work() -> bool:
    return _current.get() is not None


@contextmanager
def bound(uow: UnitOfWork) -> Iterator[UnitOfWork]:
    """Make ``uow`` the current unit of work without owning its transaction (the job runner commits)."""
    if _current.get() is not None:
        raise RuntimeError("a unit of work is already open; helpers join it, they never open another")
    token: Token[UnitOfWork | None] = _current.set(uow)
    try:
        yield uow
    finally:
        _current.reset(token)


@contextmanager
def unit_of_work(session: Session | None = None) -> Iterator[UnitOfWork]:
    """Own one transaction: commit on success (or on a ``keep_changes`` problem), roll back otherwise."""
    uow = UnitOfWork(session)
    committed = False
    try:
        with bound(uow):
            try:
                yield uow
            except Problem as problem:
                if problem.keep_changes:
                    uow.session.commit()
                    committed = True
                raise
            uow.session.commit()
            committed = True
    except BaseException:
        if not committed:
            uow.rollback()
            uow.rolled_back()
        else:
            uow.committed()
        raise
    uow.committed()


class _Refused(Exception):
    """A view returned (rather than raised) an error response: roll back like for a raised problem."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def transactional(view: F) -> F:
    """Run ``view`` in its own unit of work (``wrap_views`` applies it to every view of the app)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with unit_of_work():
                response = current_app.make_response(view(*args, **kwargs))
                if response.status_code >= 400:
                    raise _Refused(response)  # an error answer changes nothing, raised or returned
                return response
        except _Refused as refused:
            return refused.response

    wrapper.__estacionate_unit_of_work__ = True  # type: ignore[attr-defined]
    return cast(F, wrapper)


def wrap_views(app: Flask) -> None:
    """Give every registered view its unit of work; call once, after every blueprint is registered."""
    for endpoint, view in list(app.view_functions.items()):
        if not getattr(view, "__estacionate_unit_of_work__", False):
            app.view_functions[endpoint] = transactional(view)


R = TypeVar("R")


def stored(row: R) -> R:
    """Flush ``row`` and reload it as the database now holds it; returns it.

    The answer of a request is built before its unit of work commits, so a row a use case just
    wrote still carries the Python values it was given (``Decimal("0.1")`` for a ``NUMERIC(5,4)``
    that reads back ``0.1000``, no server defaults, ``updated_at`` not yet bumped). A service that
    returns a row it wrote returns ``stored(row)``: one SELECT, what the old commit-and-reload cost.
    """
    session = db.session
    session.flush()
    session.refresh(row)
    return row


def single_statement(statement: Any, parameters: Any = None) -> list[Any]:
    """Run one statement as a transaction of its own (autocommit) and return its rows, fetched.

    Atomic like ``BEGIN; statement; COMMIT`` (PostgreSQL commits a lone statement itself), in one
    round trip instead of three, and with no session bookkeeping: the hot path's writes that must
    be durable at once and alone (a job's claim, marking events handed over). It runs on a
    connection of its own and commits at once, outside any open unit of work's all-or-nothing:
    so never for a use case's own changes (those go in its unit of work).
    """
    with autocommit_engine().connect() as connection:
        result = connection.execute(statement, parameters)
        return list(result) if result.returns_rows else []


_AUTOCOMMIT_ENGINE = "estacionate.autocommit_engine"
_AUTOCOMMIT_POOL = {"pool_size": 2, "max_overflow": 8}
_engine_lock = threading.Lock()


def autocommit_engine() -> Engine:
    """The app's engine in autocommit, on a small pool of its own, created on first use.

    A pool of its own because switching a pooled connection to autocommit and back costs a
    ``SET default_transaction_isolation`` round trip on every return: that would eat the saving.
    Created lazily, so a forking server (Celery prefork, gunicorn) creates it in each child.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    engine = app.extensions.get(_AUTOCOMMIT_ENGINE)
    if engine is None:
        with _engine_lock:
            engine = app.extensions.get(_AUTOCOMMIT_ENGINE)
            if engine is None:
                options = {**app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}), **_AUTOCOMMIT_POOL}
                engine = create_engine(db.engine.url, isolation_level="AUTOCOMMIT", **options)
                app.extensions[_AUTOCOMMIT_ENGINE] = engine
    return engine
