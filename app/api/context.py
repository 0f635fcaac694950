"""Who is calling: the bearer-token guard every authenticated endpoint uses, and the audit actor.

``@login_required`` marks a view; the caller is authenticated in a ``before_request`` hook
(``init_app``) that runs after the HTTP edge and BEFORE the rate limiter, so the per-user limit
is keyed by a principal whose session was just validated (``g.principal``), never by the claims
of a token that may have been revoked: a stolen, revoked token cannot spend its victim's budget.
A request whose authentication fails is counted by the limiter against its client address (so
floods of bad tokens are throttled too), and its 401 is raised by a blueprint hook that runs
after the limiter and before the body is validated.

``@mfa_exempt`` (under ``@login_required``) marks the few endpoints a staff session that has not
given a second factor may still reach: logging out. Enrollment (``enrollment_caller``) is open
to it as well.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, request

from app.problems import Problem
from app.security import mfa_challenges
from app.security.rbac import Principal
from app.security.tokens import InvalidToken, current_tokens
from app.services import audit
from app.services.auth import authenticate, resolve_challenge
from app.services.mfa import EnrollmentCaller

F = TypeVar("F", bound=Callable[..., Any])

BEARER_SECURITY = [{"bearerAuth": []}]
#: View attributes (``functools.wraps`` carries them up through every decorator to the URL map).
LOGIN_REQUIRED = "login_required"
MFA_EXEMPT = "mfa_exempt"


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem("unauthenticated", "Send 'Authorization: Bearer <access_token>'.")
    return token.strip()


def mfa_exempt(view: F) -> F:
    """Let a staff session without a second factor reach this view (apply under ``@login_required``)."""
    setattr(view, MFA_EXEMPT, True)
    return view


def login_required(view: F) -> F:
    """Mark a view as needing a live session; ``init_app``'s hook authenticates before the rate limit."""
    allow_pending_mfa = bool(getattr(view, MFA_EXEMPT, False))

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _raise_deferred_failure()
        if g.get("principal") is None:  # an app without the hook (or a view off any blueprint)
            g.principal = authenticate(bearer_token(), allow_pending_mfa=allow_pending_mfa)
        return view(*args, **kwargs)

    setattr(wrapper, LOGIN_REQUIRED, True)
    return cast(F, wrapper)


def _authenticate_request() -> None:
    """Before the rate limiter: set ``g.principal`` for a ``login_required`` view, or keep its 401 for later."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is None or not getattr(view, LOGIN_REQUIRED, False):
        return
    try:
        g.principal = authenticate(bearer_token(), allow_pending_mfa=bool(getattr(view, MFA_EXEMPT, False)))
    except Problem as problem:
        g.authentication_failure = problem  # the limiter counts this request against its address first


def _raise_deferred_failure() -> None:
    failure = g.pop("authentication_failure", None)
    if failure is not None:
        raise failure


def init_app(app: Flask) -> None:
    """Install the hooks; call after the blueprints are registered and before the rate limiter is built."""
    app.before_request(_authenticate_request)
    for name in app.blueprints:
        # Blueprint hooks run after every application hook, so after the limiter's check.
        app.before_request_funcs.setdefault(name, []).append(_raise_deferred_failure)


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
    """MFA enrollment accepts an access token, or the enrollment ``mfa_token`` that can do nothing else.

    An access token of a staff session that has not given a second factor is accepted here: enrolling
    is how that session's owner fixes it.
    """
    token = bearer_token()
    try:
        current_tokens().decode(token, purpose=mfa_challenges.ENROLL)
    except InvalidToken:
        principal = authenticate(token, allow_pending_mfa=True)
        g.principal = principal
        return EnrollmentCaller(principal.user_id, session_id=principal.session_id)
    user, challenge = resolve_challenge(token, mfa_challenges.ENROLL)
    return EnrollmentCaller(user.id, challenge_id=challenge.challenge_id)
