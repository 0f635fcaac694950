"""``/v1/auth``: log in (password, then TOTP where required), MFA enrollment, sessions, password."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, request
from flask_openapi3 import Tag
from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from app.api.context import (
    BEARER_SECURITY,
    client_ip,
    current_principal,
    enrollment_caller,
    login_required,
    mfa_exempt,
    request_actor,
)
from app.api.openapi import APIBlueprint, problems
from app.api.schemas import StrictModel, exactly_one_of, no_nulls
from app.domain.timefmt import rfc3339_epoch
from app.representation import Document
from app.security.rate_limits import limit_class
from app.services import auth, mfa, password_reset, sessions
from app.services.audit import Actor
from app.services.sessions import LoginResult

bp = APIBlueprint("auth", __name__, url_prefix="/v1/auth", abp_tags=[Tag(name="auth")])


class LoginRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(Document):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int
    session_id: str

    @classmethod
    def of(cls, result: LoginResult) -> TokenResponse:
        return cls(access_token=result.access_token, expires_in=result.expires_in, session_id=result.session_id)


class MfaRequired(Document):
    """The password was right; send a TOTP code (or a recovery code) with ``mfa_token`` to /mfa/verify."""

    mfa_required: Literal[True]
    mfa_token: str
    expires_in: int


class MfaEnrollmentRequired(Document):
    """The password was right, and the role needs MFA: enroll with ``mfa_token`` as the Bearer token."""

    mfa_enrollment_required: Literal[True]
    mfa_token: str
    expires_in: int


class LoginResponse(RootModel[TokenResponse | MfaRequired | MfaEnrollmentRequired]):
    """Tokens, or the next step: ``mfa_required`` / ``mfa_enrollment_required`` with an ``mfa_token``."""


class MfaVerifyRequest(StrictModel):
    """``mfa_token`` and exactly one factor: ``code`` (TOTP) or ``recovery_code``."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("code", "recovery_code"))

    mfa_token: str = Field(min_length=1, max_length=4096)
    code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _no_null_factor(cls, data: Any) -> Any:
        return no_nulls(data, ("code", "recovery_code"))

    @model_validator(mode="after")
    def _exactly_one_factor(self) -> MfaVerifyRequest:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send exactly one of code or recovery_code")
        return self


class MfaEnrollResponse(Document):
    secret: str
    otpauth_uri: str


class MfaConfirmRequest(StrictModel):
    code: str = Field(min_length=1, max_length=16)


class MfaConfirmResponse(TokenResponse):
    recovery_codes: list[str]

    @classmethod
    def with_codes(cls, codes: list[str], result: LoginResult) -> MfaConfirmResponse:
        return cls(
            recovery_codes=codes,
            access_token=result.access_token,
            expires_in=result.expires_in,
            session_id=result.session_id,
        )


class MfaDisableRequest(StrictModel):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=1, max_length=16)


class PasswordChangeRequest(StrictModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class SessionItem(Document):
    session_id: str
    created_at: str
    last_seen_at: str
    ip: str | None
    user_agent: str | None
    current: bool


class SessionList(Document):
    items: list[SessionItem]


class SessionPath(BaseModel):
    session_id: str = Field(min_length=1, max_length=128)


def _user_agent() -> str | None:
    return request.headers.get("User-Agent")


@bp.post("/login", responses={200: LoginResponse, **problems(401)})
@limit_class("auth")
def login(body: LoginRequest) -> dict[str, object]:
    """E-mail and password; answers tokens, or an ``mfa_token`` for the second step."""
    return LoginResponse.model_validate(auth.login(body.email, body.password, client_ip(), _user_agent())).model_dump(
        mode="json"
    )


@bp.post("/mfa/verify", responses={200: TokenResponse, **problems(401)})
@limit_class("auth")
def verify_mfa(body: MfaVerifyRequest) -> dict[str, object]:
    """Second step: a TOTP code (or a recovery code) turns the ``mfa_token`` into a session."""
    result = mfa.verify_login(body.mfa_token, body.code, body.recovery_code, client_ip(), _user_agent())
    return TokenResponse.of(result).model_dump(mode="json")


@bp.post("/mfa/enroll", responses={200: MfaEnrollResponse, **problems(409)}, security=BEARER_SECURITY)
def start_mfa_enrollment() -> dict[str, object]:
    """Start TOTP enrollment (Bearer: an enrollment ``mfa_token`` or an access token)."""
    caller = enrollment_caller()
    started = mfa.start_enrollment(caller, Actor("human", caller.user_id, client_ip(), _user_agent()))
    return MfaEnrollResponse.model_validate(started).model_dump(mode="json")


@bp.post("/mfa/confirm", responses={200: MfaConfirmResponse, **problems(409)}, security=BEARER_SECURITY)
def confirm_mfa_enrollment(body: MfaConfirmRequest) -> dict[str, object]:
    """Confirm enrollment with a first code: MFA is on, 10 recovery codes (shown once), a new session."""
    caller = enrollment_caller()
    actor = Actor("human", caller.user_id, client_ip(), _user_agent())
    codes, result = mfa.confirm_enrollment(caller, body.code, actor, client_ip(), _user_agent())
    return MfaConfirmResponse.with_codes(codes, result).model_dump(mode="json")


@bp.post("/mfa/disable", responses={204: None, **problems(409)}, security=BEARER_SECURITY)
@login_required
def disable_mfa(body: MfaDisableRequest) -> Response:
    """Turn MFA off (password and a current code); refused for roles that require MFA."""
    principal = current_principal()
    mfa.disable(principal.user_id, principal.session_id, body.password, body.code, request_actor())
    return Response(status=204)


@bp.post("/logout", responses={204: None}, security=BEARER_SECURITY)
@login_required
@mfa_exempt
def logout() -> Response:
    """End this session: its token answers 401 from now on."""
    auth.logout(current_principal(), request_actor())
    return Response(status=204)


@bp.post("/logout-all", responses={204: None}, security=BEARER_SECURITY)
@login_required
@mfa_exempt
def logout_all() -> Response:
    """End every session of yours, this one included."""
    auth.logout_all(current_principal(), request_actor())
    return Response(status=204)


@bp.get("/sessions", responses={200: SessionList}, security=BEARER_SECURITY)
@login_required
def list_sessions() -> dict[str, object]:
    """Your live sessions, newest first."""
    principal = current_principal()
    items = [
        SessionItem(
            session_id=s.session_id,
            created_at=rfc3339_epoch(s.created_at),
            last_seen_at=rfc3339_epoch(s.last_seen_at),
            ip=s.ip,
            user_agent=s.user_agent,
            current=s.session_id == principal.session_id,
        )
        for s in sessions.list_sessions(principal)
    ]
    return SessionList(items=items).model_dump(mode="json")


@bp.delete("/sessions/<session_id>", responses={204: None}, security=BEARER_SECURITY)
@login_required
def delete_session(path: SessionPath) -> Response:
    """End one of your sessions."""
    sessions.revoke_session(current_principal(), path.session_id, request_actor())
    return Response(status=204)


@bp.post("/password", responses={204: None}, security=BEARER_SECURITY)
@login_required
def change_password(body: PasswordChangeRequest) -> Response:
    """Change your password; every other session of yours ends."""
    auth.change_password(current_principal(), body.current_password, body.new_password, request_actor())
    return Response(status=204)


class PasswordResetRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)


class PasswordResetAccepted(Document):
    status: Literal["accepted"] = "accepted"
    detail: str


class PasswordResetConfirmRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)
    code: str = Field(min_length=1, max_length=16, description="The 6 digits sent by WhatsApp.")
    new_password: str = Field(min_length=10, max_length=1024, description="At least 10 characters.")


RESET_ACCEPTED = "If the account exists and has a phone, a code was sent to it by WhatsApp; it is valid 10 minutes."


@bp.post("/password-reset", responses={202: PasswordResetAccepted})
@limit_class("auth")
def request_password_reset(body: PasswordResetRequest) -> tuple[dict[str, object], int]:
    """Send a 6-digit reset code by WhatsApp; the same answer for every e-mail."""
    password_reset.request(body.email, client_ip(), _user_agent())
    return PasswordResetAccepted(detail=RESET_ACCEPTED).model_dump(mode="json"), 202


@bp.post("/password-reset/confirm", responses={204: None, **problems(401)})
@limit_class("auth")
def confirm_password_reset(body: PasswordResetConfirmRequest) -> Response:
    """Set a new password with the code; every session ends, the login lockout is lifted.

    A wrong, expired, replaced, used or killed code (or an unknown e-mail) is 401, like a wrong password.
    """
    password_reset.confirm(body.email, body.code, body.new_password, client_ip(), _user_agent())
    return Response(status=204)
