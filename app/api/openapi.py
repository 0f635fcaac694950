"""How every operation is described in the OpenAPI document: its operationId and its problem answers.

A view declares only what it answers on success (``responses={200: BookingDocument}``) and, where
its service can refuse for a business reason, ``problems(409)``. Everything else a request can
meet on the way is added here, from what the view *is*, so no endpoint documents it by hand:

- every operation: 422 (a NUL in any query parameter, a bad header), 429 (the default rate limit)
  and 503 (PostgreSQL or Redis out);
- a POST/PUT/PATCH: 400 (not JSON, nested too deep), 413 (over the size limit), 415 (not JSON);
- an authenticated operation (``@login_required`` or bearer security): 401 and 403 (a staff
  session without its second factor, a role that may not);
- a path parameter: 404 (absent, or outside the caller's scope);
- ``@idempotent``: 409 (the same key still in flight);
- and 414 (an HTML page from gunicorn, not a problem: the request line is over its 4,094-byte
  limit before the app sees it), since a long enough path or query reaches any operation.

Each is the ``Problem`` schema under ``application/problem+json``, the one shape of every error.
The operationId is the view function's name (``create_booking``, ``get_job``, ``login``): unique
and stable, since it names the method of every generated client; a test checks both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from flask_openapi3 import APIBlueprint as _APIBlueprint
from flask_openapi3.models import Parameter, Schema
from flask_openapi3.types import ParametersTuple
from flask_openapi3.utils import parse_rule

from app.api.context import LOGIN_REQUIRED
from app.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from app.api.idempotency import IDEMPOTENT
from app.api.schemas import ProblemDocument

PROBLEM_SCHEMA = ProblemDocument.__name__
PROBLEM_CONTENT_TYPE = "application/problem+json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

PROBLEM_DESCRIPTIONS = {
    400: "Malformed request (the body is not JSON, or nested too deep)",
    401: "Unauthenticated (no, expired or revoked token; wrong credentials; MFA required)",
    403: "Forbidden (the role may not, MFA enrollment required, resident not verified, blocked)",
    404: "Not found (absent, or outside the caller's scope)",
    409: "Conflict (state, version, availability, or the same Idempotency-Key in flight)",
    413: "Payload too large",
    415: "Unsupported media type (send application/json)",
    422: "Validation error (each error points at the offending field)",
    429: "Rate limited or account locked (see Retry-After)",
    503: "Service unavailable (a dependency is down; retry later)",
}


def problem_response(status: int) -> dict[str, Any]:
    """One documented problem answer: the ``Problem`` schema under ``application/problem+json``."""
    return {
        "description": PROBLEM_DESCRIPTIONS.get(status, "Problem"),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}},
    }


#: gunicorn's own answer to an over-long request line (``limit_request_line``), before the app.
URI_TOO_LONG = {
    "description": "URI too long: the request line is over the HTTP server's 4,094-byte limit",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def problems(*statuses: int) -> dict[int, dict[str, Any]]:
    """The business refusals a view's service can give beyond the automatic ones, e.g. ``problems(409)``."""
    return {status: problem_response(status) for status in statuses}


def operation_problems(func: Callable[..., Any], method: str, *, authenticated: bool, has_path: bool) -> set[int]:
    """The problem statuses any request to this operation can meet before or around its service."""
    statuses = {422, 429, 503}
    if method.upper() in BODY_METHODS:
        statuses |= {400, 413, 415}
    if authenticated or getattr(func, LOGIN_REQUIRED, False):
        statuses |= {401, 403}
    if has_path:
        statuses.add(404)
    if getattr(func, IDEMPOTENT, False):
        statuses.add(409)
    return statuses


def idempotency_key_parameter() -> Parameter:
    """The optional ``Idempotency-Key`` header of an ``@idempotent`` POST (API.md)."""
    return Parameter(
        name=IDEMPOTENCY_HEADER,
        **{"in": "header"},
        required=False,
        description="Replays the first answer (IDEMPOTENCY_TTL_SECONDS); the same key with another body: 422.",
        schema=Schema(type="string", minLength=1, maxLength=255, pattern="^[\\x20-\\x7e]+$"),
    )


def operation_id(*, name: str = "", **_: Any) -> str:
    """The view's own name: ``create_booking``, not ``bookings_create_v1_bookings_post``."""
    return name


def _has_path_model(func: Callable[..., Any]) -> bool:
    return "path" in inspect.signature(func).parameters


class APIBlueprint(_APIBlueprint):
    """flask-openapi3's blueprint, documenting every operation's problems and operationId centrally."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("operation_id_callback", operation_id)
        super().__init__(*args, **kwargs)

    def _collect_openapi_info(
        self,
        rule: str,
        func: Callable[..., Any],
        *,
        responses: dict[Any, Any] | None = None,
        security: list[dict[str, list[Any]]] | None = None,
        method: str = "GET",
        **kwargs: Any,
    ) -> ParametersTuple:
        documented: dict[Any, Any] = dict(responses or {})
        authenticated = bool((security or []) + list(self.abp_security or []))
        wanted = operation_problems(func, method, authenticated=authenticated, has_path=_has_path_model(func))
        for status in sorted(wanted):
            documented.setdefault(status, problem_response(status))
        documented.setdefault(414, URI_TOO_LONG)
        collected = super()._collect_openapi_info(
            rule, func, responses=documented, security=security, method=method, **kwargs
        )
        if getattr(func, IDEMPOTENT, False) and kwargs.get("doc_ui", True) and self.doc_ui:
            operation = getattr(self.paths[parse_rule(rule, url_prefix=self.url_prefix)], method.lower())
            operation.parameters = [*(operation.parameters or []), idempotency_key_parameter()]
        return collected


def problem_statuses(document: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    """(path, method, status) of every answer in an OpenAPI document that is not problem+json (for tests)."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            for status, answer in operation.get("responses", {}).items():
                if int(status) >= 400 and int(status) != 414 and PROBLEM_CONTENT_TYPE not in answer.get("content", {}):
                    yield path, method, status
