"""The HTTP edge, applied to every request and every response (errors included).

Before: trace id; size limit (413); JSON-only bodies (415) that parse (400) and nest at most
``MAX_JSON_DEPTH`` levels (400: deeper documents exhaust the parser's recursion, and no request of
ours nests more than a few levels); NUL characters nowhere (422).
After: ``X-Request-ID``, ``Cache-Control: no-store``, one JSON access-log line.
Security headers come from flask-talisman, configured here.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from app.extensions import talisman
from app.observability import timing, trace
from app.problems import Problem

log = logging.getLogger("app.access")

API_CSP = {"default-src": "'none'", "frame-ancestors": "'none'"}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Containers nested deeper than this are refused with 400. Our bodies nest two or three levels;
#: Python's JSON parser recurses once per level and fails near 1,000 (a RecursionError, a 500).
MAX_JSON_DEPTH = 64
#: Provider callbacks, which arrive form-encoded (Twilio's status callback), not JSON.
FORM_PATHS = frozenset({"/v1/webhooks/twilio/status"})
FORM_TYPE = "application/x-www-form-urlencoded"


def _start() -> None:
    timing.start()
    g.trace_token = trace.set_current(trace.from_headers(request.headers))
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise Problem("payload-too-large", "The request body is larger than the 1 MiB limit.")
    for name, value in request.args.items(multi=True):
        if "\x00" in value or "\x00" in name:
            raise _nul(f"/{name}")
    if request.method in BODY_METHODS and request.path in FORM_PATHS:
        if request.mimetype != FORM_TYPE:
            raise Problem("unsupported-media-type", f"Send the body as {FORM_TYPE}.")
        return
    if request.method in BODY_METHODS and _has_body():
        if not request.is_json:
            raise Problem("unsupported-media-type", "Send the body as application/json.")
        try:
            body = request.get_json()
        except RequestEntityTooLarge as exc:
            raise Problem("payload-too-large", "The request body is larger than the 1 MiB limit.") from exc
        except BadRequest as exc:
            raise Problem("malformed-request", "The request body is not valid JSON.") from exc
        except RecursionError as exc:
            raise _too_deep() from exc
        where = _nul_pointer(body, "", 1)
        if where is not None:
            raise _nul(where or "/")


def _nul(pointer: str) -> Problem:
    """NUL characters are refused everywhere: no text column (nor PostgreSQL) can hold them."""
    return Problem(
        "validation-error", "Text must not contain NUL characters.", errors=[{"pointer": pointer, "detail": "NUL"}]
    )


def _too_deep() -> Problem:
    return Problem("malformed-request", f"The request body is nested too deep (at most {MAX_JSON_DEPTH} levels).")


def _nul_pointer(value: Any, at: str, depth: int) -> str | None:
    """Where the first NUL is, if any; raises the 400 for a container deeper than the limit.

    One walk does both, so the depth check costs nothing extra on ordinary bodies; the recursion
    stops at ``MAX_JSON_DEPTH`` levels, far below Python's own limit.
    """
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict | list) and depth > MAX_JSON_DEPTH:
        raise _too_deep()
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{at}/{key}"
            found = _nul_pointer(item, f"{at}/{key}", depth + 1)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_pointer(item, f"{at}/{index}", depth + 1)
            if found is not None:
                return found
    return None


def _has_body() -> bool:
    if request.content_length:
        return True
    return "chunked" in (request.headers.get("Transfer-Encoding") or "").lower()


def _finish(response: Response) -> Response:
    trace_id = trace.current()
    if trace_id:
        response.headers["X-Request-ID"] = trace_id
    response.headers.setdefault("Cache-Control", "no-store")
    seconds = timing.elapsed_seconds()
    log.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "http_status": response.status_code,
            "duration_ms": round(seconds * 1000, 2) if seconds is not None else None,
        },
    )
    return response


def _teardown(_exc: BaseException | None) -> None:
    token = g.pop("trace_token", None)
    if token is not None:
        trace.reset(token)


def init_app(app: Flask, *, force_https: bool = False) -> None:
    # Registered before every other hook so the trace id exists for all of them.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    talisman.init_app(
        app,
        force_https=force_https,
        frame_options="DENY",
        content_security_policy=API_CSP,
        content_security_policy_nonce_in=None,
        referrer_policy="no-referrer",
        strict_transport_security=True,
        strict_transport_security_max_age=31536000,
        session_cookie_secure=True,
        x_content_type_options=True,
        permissions_policy={},
    )
    app.after_request(_finish)
    app.teardown_request(_teardown)
