"""Checking a job request's ``callback_url`` against the outbound policy (422 if refused)."""

from __future__ import annotations

from pydantic import AnyHttpUrl

from app.problems import Problem
from app.runtime import current_settings
from app.security.outbound import DestinationRefused, check_callback_url


def validated_callback_url(url: AnyHttpUrl | None) -> str | None:
    if url is None:
        return None
    text = str(url)
    try:
        check_callback_url(text, allow_loopback=current_settings().allow_loopback_callbacks)
    except DestinationRefused as exc:
        raise Problem(
            "validation-error",
            f"callback_url {exc}.",
            errors=[{"pointer": "/callback_url", "detail": str(exc)}],
        ) from exc
    return text
