"""Checking a job's ``callback_url`` (or an operator webhook's ``url``) against the outbound policy (422 if refused).

The same policy as at delivery (``app.security.outbound``): https only in production, public
addresses only, loopback only outside production. Refusing at submit gives the caller a clear
422 now instead of a callback that silently never arrives.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl

from app.problems import Problem
from app.runtime import current_settings
from app.security.outbound import DestinationRefused, Policy, check_callback_url


def validated_callback_url(url: AnyHttpUrl | None, *, field: str = "callback_url") -> str | None:
    """The URL as text if the policy accepts it; else 422 pointing at ``field`` (operator webhooks: ``url``)."""
    if url is None:
        return None
    text = str(url)
    policy = Policy.for_settings(current_settings())
    try:
        check_callback_url(text, allow_loopback=policy.allow_loopback, require_https=policy.require_https)
    except DestinationRefused as exc:
        raise Problem(
            "validation-error",
            f"{field} {exc}.",
            errors=[{"pointer": f"/{field}", "detail": str(exc)}],
        ) from exc
    return text
