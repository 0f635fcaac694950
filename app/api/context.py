"""Who is calling: the bearer-token guard every authenticated endpoint uses, and the audit actor."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from app.problems import Problem
from app.security import mfa_challenges
from app.security.rbac import Principal
from app.security.tokens import InvalidToken, current_tokens
from app.services import audit
from app.services.auth import authenticate, resolve_challenge
from app.services.mfa import EnrollmentCaller

F = TypeVar("F", bound=Callable[..., Any])

BEARER_SECURITY = [{"bearerAuth": []}]


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem("unauthenticated", "Send 'Authorization: Bearer <access_token>'.")
    return token.strip()


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.principal = authenticate(bearer_token())
        return view(*args, **kwargs)

    return cast(F, wrapper)


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise Problem("unauthenticated")
    return principal


def client_ip() -> str | None:
    return request.remote_addr


def request_actor() -> audit.Actor:
    principal = g.get("principal")
    return audit.Actor(
        "human",
        principal.user_id if principal else None,
        client_ip(),
        request.headers.get("User-Agent"),
    )


def enrollment_caller() -> EnrollmentCaller:
    """MFA enrollment accepts an access token, or the enrollment ``mfa_token`` that can do nothing else."""
    token = bearer_token()
    try:
        current_tokens().decode(token, purpose=mfa_challenges.ENROLL)
    except InvalidToken:
        principal = authenticate(token)
        g.principal = principal
        return EnrollmentCaller(principal.user_id, session_id=principal.session_id)
    user, challenge = resolve_challenge(token, mfa_challenges.ENROLL)
    return EnrollmentCaller(user.id, challenge_id=challenge.challenge_id)
