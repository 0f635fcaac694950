"""Request rate limits (flask-limiter, counters in Redis shared by every API process).

The login and MFA-verify endpoints are limited per client address (``auth`` class), registration
per address (``register`` class), everything else per user: the principal whose session was
validated before the limiter ran (``g.principal``, set by ``app.api.context``), never the mere
claims of a token, which may belong to a revoked session (a stolen, revoked token must not spend
its victim's budget). Without a principal (no token, or one that failed) the request counts
against its client address.

A client address is an IPv4 address as is, and an IPv6 address as its /64 (``client_network``):
one subscriber holds a whole /64 and can use a fresh address for every request.

Limits come from settings so the test profile can lift them; the rate-limit tests use the
production ones. Health, readiness, metrics and docs are exempt: a throttled health check takes a
healthy instance out of rotation.

Endpoints declare their class with ``@limit_class("auth")``; each app gets a limiter of its own,
built in ``init_app`` after the blueprints are registered, so several apps in one process (as in
the test suite) never share counters or storage.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from flask_limiter import Limiter

from app.runtime import redis_options
from config.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION_KEY = "estacionate.limiter"
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")
CLASS_ATTRIBUTE = "rate_limit_class"


#: IPv6 clients are counted by their first 64 bits.
IPV6_CLIENT_PREFIX = 64


def client_network(address: str | None) -> str:
    """The client a per-address limit counts: an IPv4 address, or an IPv6 address's /64.

    An IPv4 address seen through a dual-stack socket (``::ffff:a.b.c.d``) is that IPv4 address.
    Anything unparsable is ``unknown`` (one shared budget, never a fresh one per garbage value).
    """
    try:
        parsed = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


def user_or_ip() -> str:
    """The default limit's key: the authenticated principal, else the client address."""
    principal = g.get("principal")
    if principal is not None:
        return f"user:{principal.user_id}"
    return client_ip_key()


def client_ip_key() -> str:
    return "ip:" + client_network(request.remote_addr)


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
