"""Access tokens: HS256 JWTs that name a server-side session.

The JWT proves who issued it and which session it belongs to; the session in Redis decides
whether it is still valid. Only HS256 is accepted, with issuer, audience and expiry required,
so ``alg: none``, algorithm confusion, foreign audiences and expired tokens all fail decoding.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    session_id: str
    purpose: str
    expires_at: int


class TokenCodec:
    def __init__(self, secret: str, issuer: str, audience: str) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience

    def issue(self, user_id: str, session_id: str, ttl_seconds: int, purpose: str = "access") -> str:
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ttl_seconds,
            "pur": purpose,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str, purpose: str = "access") -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "sid", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        if claims.get("pur", "access") != purpose:
            raise InvalidToken("wrong purpose")
        return TokenClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            purpose=purpose,
            expires_at=int(claims["exp"]),
        )


EXTENSION_KEY = "estacionate.tokens"


def current_tokens() -> TokenCodec:
    from flask import current_app

    return current_app.extensions[EXTENSION_KEY]


def decode_once(token: str, purpose: str = "access") -> TokenClaims:
    """Decode within a request at most once (the rate limiter and the guard both need the claims)."""
    from flask import g

    cache: dict[tuple[str, str], TokenClaims | InvalidToken] = g.setdefault("token_claims", {})
    key = (token, purpose)
    if key not in cache:
        try:
            cache[key] = current_tokens().decode(token, purpose)
        except InvalidToken as exc:
            cache[key] = exc
    found = cache[key]
    if isinstance(found, InvalidToken):
        raise found
    return found
