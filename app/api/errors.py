"""Every error leaves as ``application/problem+json``: typed problems, HTTP errors, validation
errors and unexpected exceptions alike. A 500 never carries internals, only the trace id.

An outage is not a bug: when PostgreSQL, Redis or the broker cannot be reached (refused, reset,
timed out, shutting down, starting up, a statement cancelled by ``statement_timeout``, the pool
exhausted), the answer is ``503 service-unavailable`` with ``Retry-After``, found anywhere in the
exception's chain (libraries wrap: flask-limiter's storage, SQLAlchemy around psycopg2). It is
logged once at WARNING with the dependency and the error class, without a traceback: during an
outage every request fails the same way, and a stack per request would bury everything else.
"""

from __future__ import annotations

import json
import logging

import kombu.exceptions
import psycopg2
import redis.exceptions
import sqlalchemy.exc
from flask import Flask, Response
from flask_limiter.errors import RateLimitExceeded
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from app.observability import trace
from app.problems import Problem, pointer
from app.security.rate_limits import seconds_until_reset

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"

_HTTP_SLUGS = {
    400: "malformed-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    503: "service-unavailable",
}
_HTTP_DETAILS = {
    404: "No such resource.",
    405: "This method is not allowed on this resource.",
    413: "The request body is larger than the 1 MiB limit.",
    415: "Send the body as application/json.",
    400: "The request could not be parsed.",
}


#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5

#: Exceptions that mean "a dependency is unreachable", and which dependency that is.
OUTAGES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    (
        (
            sqlalchemy.exc.OperationalError,  # refused, reset, shutting down, statement timeout...
            sqlalchemy.exc.InterfaceError,  # connection already closed
            sqlalchemy.exc.DisconnectionError,
            sqlalchemy.exc.TimeoutError,  # no pooled connection within pool_timeout
            psycopg2.OperationalError,
            psycopg2.InterfaceError,
        ),
        "postgres",
    ),
    ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError), "redis"),
    ((kombu.exceptions.OperationalError,), "broker"),
)


def outage_of(exc: BaseException) -> str | None:
    """The dependency whose outage caused ``exc`` (searching its causes), or None for a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for classes, dependency in OUTAGES:
            if isinstance(current, classes):
                return dependency
        wrapped = getattr(current, "storage_error", None)  # limits.errors.StorageError
        current = wrapped if isinstance(wrapped, BaseException) else (current.__cause__ or current.__context__)
    return None


def _unavailable(exc: BaseException, dependency: str) -> Response:
    # The view's unit of work has rolled back already (app/unit_of_work.py).
    log.warning("dependency unavailable", extra={"dependency": dependency, "error": _error_name(exc)})
    return problem_response(
        Problem(
            "service-unavailable",
            "A service this request needs is unavailable; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    )


def _error_name(exc: BaseException) -> str:
    """The class of the driver's error, never its message (SQLAlchemy's holds the SQL and parameters)."""
    original = getattr(exc, "orig", None)
    return type(original if isinstance(original, BaseException) else exc).__name__


def problem_response(problem: Problem) -> Response:
    response = Response(
        json.dumps(problem.to_dict(trace.current()), ensure_ascii=False),
        status=problem.status,
        mimetype=PROBLEM_MIMETYPE,
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def validation_problem(exc: ValidationError) -> Response:
    """flask-openapi3's validation callback: pydantic errors as a 422 with JSON pointers."""
    errors = [{"pointer": pointer(err["loc"]), "detail": err["msg"]} for err in exc.errors(include_url=False)]
    return problem_response(Problem("validation-error", "The request is not valid.", errors=errors))


def _http_error(exc: HTTPException) -> Response:
    if exc.response is not None:  # already a finished response (e.g. from a validation callback)
        return exc.response
    status = exc.code or 500
    slug = _HTTP_SLUGS.get(status, "internal-error" if status >= 500 else "malformed-request")
    problem = Problem(slug, _HTTP_DETAILS.get(status), status=status)
    response = problem_response(problem)
    if status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    dependency = outage_of(exc)
    if dependency is not None:
        return _unavailable(exc, dependency)
    log.exception("unhandled error")
    return problem_response(Problem("internal-error", "Something went wrong on our side; quote the trace id."))


def _rate_limited(exc: RateLimitExceeded) -> Response:
    seconds = seconds_until_reset()
    return problem_response(
        Problem("rate-limited", "Too many requests; slow down.", headers={"Retry-After": str(seconds)})
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
