"""``/v1/auth``: log in and out."""

from __future__ import annotations

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.api.context import BEARER_SECURITY, client_ip, current_principal, login_required, request_actor
from app.api.schemas import PROBLEM_RESPONSES, StrictModel
from app.services import auth

bp = APIBlueprint("auth", __name__, url_prefix="/v1/auth", abp_tags=[Tag(name="auth")])


class LoginRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int
    session_id: str


@bp.post("/login", responses={200: TokenResponse, **PROBLEM_RESPONSES})
def login(body: LoginRequest) -> dict[str, object]:
    """Exchange e-mail and password for an access token (MFA steps arrive with account security)."""
    result = auth.login(body.email, body.password, client_ip(), request.headers.get("User-Agent"))
    return result.as_dict()


@bp.post("/logout", responses={204: None, 401: PROBLEM_RESPONSES[401]}, security=BEARER_SECURITY)
@login_required
def logout() -> Response:
    """End this session: its token answers 401 from now on."""
    auth.logout(current_principal(), request_actor())
    return Response(status=204)
