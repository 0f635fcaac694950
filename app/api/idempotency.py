"""The ``Idempotency-Key`` header on POSTs that create jobs or resources (API.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, g, make_response, request

from app.api.context import current_principal
from app.extensions import db
from app.problems import Problem
from app.services import idempotency

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
#: The view attribute ``app.api.openapi`` reads (``functools.wraps`` carries it up).
IDEMPOTENT = "idempotent"


def current_claim() -> idempotency.Claim | None:
    """The claim for this request, for services that complete it inside their own transaction."""
    return g.get("idempotency_claim")


def idempotent(view: F) -> F:
    """Replay, refuse or run the request according to its Idempotency-Key (must follow ``login_required``)."""

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
        g.idempotency_claim = outcome
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            idempotency.release(outcome)
            raise
        if response.status_code >= 400:
            idempotency.release(outcome)
        elif not idempotency.is_completed(outcome):
            body_json = response.get_json(silent=True)
            idempotency.complete(outcome, response.status_code, body_json, location=response.headers.get("Location"))
            db.session.commit()
        return response

    setattr(wrapper, IDEMPOTENT, True)  # app.api.openapi documents the 409 of a key in flight
    return cast(F, wrapper)


def _replay(replay: idempotency.Replay) -> Response:
    response = Response(json.dumps(replay.body), status=replay.status, mimetype="application/json")
    if replay.location:
        response.headers["Location"] = replay.location
    response.headers["Idempotent-Replayed"] = "true"
    return response
