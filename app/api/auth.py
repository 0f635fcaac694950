"""``/v1/auth``: log in (password, then TOTP where required), MFA enrollment, sessions, password."""

from __future__ import annotations

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, model_validator

from app.api.context import (
    BEARER_SECURITY,
    client_ip,
    current_principal,
    enrollment_caller,
    login_required,
    mfa_exempt,
    request_actor,
)
from app.api.schemas import PROBLEM_RESPONSES, ProblemDocument, StrictModel
from app.domain.timefmt import rfc3339_epoch
from app.security.rate_limits import limit_class
from app.services import auth, mfa, sessions
from app.services.audit import Actor

bp = APIBlueprint("auth", __name__, url_prefix="/v1/auth", abp_tags=[Tag(name="auth")])

AUTH_ERRORS = {**PROBLEM_RESPONSES, 429: ProblemDocument}


class LoginRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int
    session_id: str


class LoginResponse(BaseModel):
    """Tokens, or the next step: ``mfa_required`` / ``mfa_enrollment_required`` with an ``mfa_token``."""

    access_token: str | None = None
    token_type: str | None = None
    expires_in: int
    session_id: str | None = None
    mfa_required: bool | None = None
    mfa_enrollment_required: bool | None = None
    mfa_token: str | None = None


class MfaVerifyRequest(StrictModel):
    mfa_token: str = Field(min_length=1, max_length=4096)
    code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _exactly_one_factor(self) -> MfaVerifyRequest:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send exactly one of code or recovery_code")
        return self


class MfaEnrollResponse(BaseModel):
    secret: str
    otpauth_uri: str


class MfaConfirmRequest(StrictModel):
    code: str = Field(min_length=1, max_length=16)


class MfaConfirmResponse(TokenResponse):
    recovery_codes: list[str]


class MfaDisableRequest(StrictModel):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=1, max_length=16)


class PasswordChangeRequest(StrictModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class SessionItem(BaseModel):
    session_id: str
    created_at: str
    last_seen_at: str
    ip: str | None
    user_agent: str | None
    current: bool


class SessionList(BaseModel):
    items: list[SessionItem]


class SessionPath(BaseModel):
    session_id: str = Field(min_length=1, max_length=128)


def _user_agent() -> str | None:
    return request.headers.get("User-Agent")


@bp.post("/login", responses={200: LoginResponse, **AUTH_ERRORS})
@limit_class("auth")
def login(body: LoginRequest) -> dict[str, object]:
    """E-mail and password; answers tokens, or an ``mfa_token`` for the second step."""
    return auth.login(body.email, body.password, client_ip(), _user_agent())


@bp.post("/mfa/verify", responses={200: TokenResponse, **AUTH_ERRORS})
@limit_class("auth")
def mfa_verify(body: MfaVerifyRequest) -> dict[str, object]:
    """Second step: a TOTP code (or a recovery code) turns the ``mfa_token`` into a session."""
    result = mfa.verify_login(body.mfa_token, body.code, body.recovery_code, client_ip(), _user_agent())
    return result.as_dict()


@bp.post("/mfa/enroll", responses={200: MfaEnrollResponse, **AUTH_ERRORS}, security=BEARER_SECURITY)
def mfa_enroll() -> dict[str, str]:
    """Start TOTP enrollment (Bearer: an enrollment ``mfa_token`` or an access token)."""
    caller = enrollment_caller()
    return mfa.start_enrollment(caller, Actor("human", caller.user_id, client_ip(), _user_agent()))


@bp.post("/mfa/confirm", responses={200: MfaConfirmResponse, **AUTH_ERRORS}, security=BEARER_SECURITY)
def mfa_confirm(body: MfaConfirmRequest) -> dict[str, object]:
    """Confirm enrollment with a first code: MFA is on, 10 recovery codes (shown once), a new session."""
    caller = enrollment_caller()
    actor = Actor("human", caller.user_id, client_ip(), _user_agent())
    codes, result = mfa.confirm_enrollment(caller, body.code, actor, client_ip(), _user_agent())
    return {"recovery_codes": codes, **result.as_dict()}


@bp.post("/mfa/disable", responses={204: None, **AUTH_ERRORS}, security=BEARER_SECURITY)
@login_required
def mfa_disable(body: MfaDisableRequest) -> Response:
    """Turn MFA off (password and a current code); refused for roles that require MFA."""
    principal = current_principal()
    mfa.disable(principal.user_id, principal.session_id, body.password, body.code, request_actor())
    return Response(status=204)


@bp.post("/logout", responses={204: None, 401: ProblemDocument}, security=BEARER_SECURITY)
@login_required
@mfa_exempt
def logout() -> Response:
    """End this session: its token answers 401 from now on."""
    auth.logout(current_principal(), request_actor())
    return Response(status=204)


@bp.post("/logout-all", responses={204: None, 401: ProblemDocument}, security=BEARER_SECURITY)
@login_required
@mfa_exempt
def logout_all() -> Response:
    """End every session of yours, this one included."""
    auth.logout_all(current_principal(), request_actor())
    return Response(status=204)


@bp.get("/sessions", responses={200: SessionList, 401: ProblemDocument}, security=BEARER_SECURITY)
@login_required
def list_sessions() -> dict[str, object]:
    """Your live sessions, newest first."""
    principal = current_principal()
    return {
        "items": [
            {
                "session_id": s.session_id,
                "created_at": rfc3339_epoch(s.created_at),
                "last_seen_at": rfc3339_epoch(s.last_seen_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
                "current": s.session_id == principal.session_id,
            }
            for s in sessions.list_sessions(principal)
        ]
    }


@bp.delete("/sessions/<session_id>", responses={204: None, 404: ProblemDocument}, security=BEARER_SECURITY)
@login_required
def delete_session(path: SessionPath) -> Response:
    """End one of your sessions."""
    sessions.revoke_session(current_principal(), path.session_id, request_actor())
    return Response(status=204)


@bp.post("/password", responses={204: None, **AUTH_ERRORS}, security=BEARER_SECURITY)
@login_required
def change_password(body: PasswordChangeRequest) -> Response:
    """Change your password; every other session of yours ends."""
    auth.change_password(current_principal(), body.current_password, body.new_password, request_actor())
    return Response(status=204)
