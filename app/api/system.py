"""``/v1/system/ping``: a no-op job for tests and benchmarks.

In production ``sleep_ms`` must be 0: a ping that sleeps is a way to hold a worker for free, and
only tests need one (422 ``validation-error`` pointing at ``/sleep_ms``, nothing created).
"""

from __future__ import annotations

from flask_openapi3 import Tag
from pydantic import Field

from app.api.callbacks import validated_callback_url
from app.api.context import BEARER_SECURITY, login_required, request_actor
from app.api.idempotency import idempotent
from app.api.openapi import APIBlueprint
from app.api.schemas import CallbackField, JobAccepted, JsonBool, JsonInt
from app.jobs import submit
from app.problems import Problem
from app.runtime import current_settings

bp = APIBlueprint(
    "system", __name__, url_prefix="/v1/system", abp_tags=[Tag(name="system")], abp_security=BEARER_SECURITY
)


class PingRequest(CallbackField):
    sleep_ms: JsonInt = Field(
        default=0, ge=0, le=5000, description="How long the job sleeps (must be 0 when APP_ENV is production)."
    )
    fail: JsonBool = Field(default=False, description="End the job failed instead of succeeded.")


@bp.post("/ping", responses={202: JobAccepted})
@login_required
@idempotent
def ping(body: PingRequest) -> tuple[dict[str, object], int, dict[str, str]]:
    """Submit a ``system.ping`` job; its result is ``{"pong": true}``. ``sleep_ms`` only outside production."""
    if body.sleep_ms and current_settings().is_production:
        raise Problem(
            "validation-error",
            "The request is not valid.",
            errors=[{"pointer": "/sleep_ms", "detail": "sleep_ms must be 0 in production"}],
        )
    document = submit(
        "system.ping",
        {"sleep_ms": body.sleep_ms, "fail": body.fail},
        request_actor(),
        callback_url=validated_callback_url(body.callback_url),
    )
    return document, 202, {"Location": document["status_url"]}
