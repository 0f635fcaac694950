"""Request rate limits (flask-limiter, counters in Redis shared by every API process).

The login and MFA-verify endpoints are limited per client IP (``auth`` class), registration
per IP (``register`` class), everything else per user (the bearer token's subject, read without
a Redis round trip; the IP when there is none). Limits come from settings so the test profile
can lift them; the rate-limit tests use the production ones. Health, readiness, metrics and docs
are exempt: a throttled health check takes a healthy instance out of rotation.

Endpoints declare their class with ``@limit_class("auth")``; each app gets a limiter of its own,
built in ``init_app`` after the blueprints are registered, so several apps in one process (as in
the test suite) never share counters or storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.runtime import redis_options
from app.security.tokens import InvalidToken, decode_once
from config.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION_KEY = "estacionate.limiter"
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")
CLASS_ATTRIBUTE = "rate_limit_class"


def user_or_ip() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return "user:" + decode_once(token.strip()).user_id
        except InvalidToken:
            pass
    return client_ip_key()


def client_ip_key() -> str:
    return "ip:" + (get_remote_address() or "unknown")


def limit_class(name: str) -> Callable[[F], F]:
    """Mark a view as belonging to a limit class (``auth`` or ``register``) instead of the default."""

    def mark(view: F) -> F:
        setattr(view, CLASS_ATTRIBUTE, name)
        return view

    return mark


def init_app(app: Flask, settings: Settings) -> Limiter:
    """Build this app's limiter; call after every blueprint is registered."""
    limiter = Limiter(
        key_func=user_or_ip,
        app=app,
        storage_uri=settings.redis_url,
        # The request-path bounds on every Redis wait (short timeouts, one retry): an outage is a 503.
        storage_options=redis_options(),
        key_prefix="ratelimit",
        default_limits=[settings.rate_limit_default],
        # Off: flask-limiter would stamp its own Retry-After on every response (overriding, e.g.,
        # an account lockout's); app.api.errors sets Retry-After on the 429 it answers.
        headers_enabled=False,
        strategy="fixed-window",
    )
    limiter.request_filter(lambda: request.path.startswith(UNLIMITED_PATHS))
    per_class = {"auth": settings.rate_limit_auth, "register": settings.rate_limit_register}
    for endpoint, view in list(app.view_functions.items()):
        name = getattr(view, CLASS_ATTRIBUTE, None)
        if name is not None:
            # flask-limiter checks a decorated limit when the view is called: install the wrapper.
            app.view_functions[endpoint] = limiter.limit(per_class[name], key_func=client_ip_key)(view)
    app.extensions[EXTENSION_KEY] = limiter
    return limiter


def current_limiter() -> Limiter:
    return current_app.extensions[EXTENSION_KEY]


def seconds_until_reset() -> int:
    """For a request that just breached a limit: when its window resets."""
    breached = current_limiter().current_limit
    if breached is None:
        return 60
    return max(1, int(breached.reset_at - time.time()))
