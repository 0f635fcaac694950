"""The ``Idempotency-Key`` header on POSTs that create jobs or resources (API.md)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, make_response, request

from app.api.context import current_principal
from app.problems import Problem
from app.services import idempotency

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
#: The view attribute ``app.api.openapi`` reads (``functools.wraps`` carries it up).
IDEMPOTENT = "idempotent"


def idempotent(view: F) -> F:
    """Replay, refuse or run the request according to its Idempotency-Key (must follow ``login_required``).

    Runs inside the view's unit of work (``app/unit_of_work.py``): the key is locked for the
    transaction, and a successful (2xx/3xx) response is recorded in it, so the change and its key
    commit together. A failed request records nothing: the client may retry with the same key.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not idempotency.valid_key(key):
            raise Problem(
                "validation-error",
                "Idempotency-Key must be 1-255 printable ASCII characters.",
                errors=[{"pointer": "/headers/Idempotency-Key", "detail": "1-255 printable ASCII characters"}],
            )
        principal = current_principal()
        body = request.get_json(silent=True) if request.content_length else None
        outcome = idempotency.begin(principal.user_id, key, idempotency.fingerprint(request.method, request.path, body))
        if isinstance(outcome, idempotency.Replay):
            return _replay(outcome)
        response = make_response(view(*args, **kwargs))
        if response.status_code < 400:
            body_json = response.get_json(silent=True)
            idempotency.complete(
                outcome,
                response.status_code,
                body_json,
                location=response.headers.get("Location"),
                job_id=_accepted_job(response.status_code, body_json),
            )
        return response

    setattr(wrapper, IDEMPOTENT, True)  # app.api.openapi documents the 409 of a key in flight
    return cast(F, wrapper)


def _accepted_job(status: int, body: Any) -> uuid.UUID | None:
    """The job a 202 job document accepted (the record is purged with its job)."""
    if status != 202 or not isinstance(body, dict) or not isinstance(body.get("job_id"), str):
        return None
    try:
        return uuid.UUID(body["job_id"])
    except ValueError:
        return None


def _replay(replay: idempotency.Replay) -> Response:
    response = Response(json.dumps(replay.body), status=replay.status, mimetype="application/json")
    if replay.location:
        response.headers["Location"] = replay.location
    response.headers["Idempotent-Replayed"] = "true"
    return response
