"""Specification of access tokens: HS256 JWTs with issuer, audience, expiry and a session id."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.security.tokens import InvalidToken, TokenClaims, TokenCodec

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4
OTHER_SECRET = "another-secret-" + "fedcba9876543210" * 4
ISSUER = "estacionate"
AUDIENCE = "estacionate-api"

codec = TokenCodec(SECRET, ISSUER, AUDIENCE)


def claims(**overrides: object) -> dict[str, object]:
    """A complete, valid claim set; ``None`` removes a claim."""
    now = int(time.time())
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "sid": "session-1",
        "jti": "a" * 32,
        "iat": now,
        "exp": now + 300,
        "pur": "access",
    }
    for name, value in overrides.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def b64url(document: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def test_issue_then_decode_round_trips():
    before = int(time.time())
    token = codec.issue("user-42", "session-7", ttl_seconds=600)
    decoded = codec.decode(token)
    assert isinstance(decoded, TokenClaims)
    assert (decoded.user_id, decoded.session_id, decoded.purpose) == ("user-42", "session-7", "access")
    assert before + 600 <= decoded.expires_at <= int(time.time()) + 600


@given(user_id=st.text(min_size=1, max_size=40), session_id=st.text(min_size=1, max_size=40))
def test_round_trip_for_any_user_and_session_id(user_id, session_id):
    decoded = codec.decode(codec.issue(user_id, session_id, ttl_seconds=60))
    assert (decoded.user_id, decoded.session_id) == (user_id, session_id)


def test_issued_token_is_hs256_with_issuer_and_audience():
    token = codec.issue("user-1", "session-1", ttl_seconds=60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == ISSUER
    assert payload["aud"] == AUDIENCE


def test_each_issued_token_has_a_unique_jti():
    first = jwt.decode(codec.issue("u", "s", 60), options={"verify_signature": False})
    second = jwt.decode(codec.issue("u", "s", 60), options={"verify_signature": False})
    assert first["jti"] != second["jti"]


def test_token_built_with_pyjwt_and_the_right_secret_is_accepted():
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert codec.decode(token).user_id == "user-1"


def test_alg_none_token_is_refused():
    token = b64url({"alg": "none", "typ": "JWT"}) + "." + b64url(claims()) + "."
    with pytest.raises(InvalidToken):
        codec.decode(token)


def test_alg_none_token_with_a_leftover_signature_is_refused():
    signed = jwt.encode(claims(), SECRET, algorithm="HS256")
    signature = signed.rsplit(".", 1)[1]
    token = b64url({"alg": "none", "typ": "JWT"}) + "." + b64url(claims()) + "." + signature
    with pytest.raises(InvalidToken):
        codec.decode(token)


def test_token_signed_with_another_secret_is_refused():
    with pytest.raises(InvalidToken):
        codec.decode(jwt.encode(claims(), OTHER_SECRET, algorithm="HS256"))


def test_token_from_a_codec_with_another_secret_is_refused():
    foreign = TokenCodec(OTHER_SECRET, ISSUER, AUDIENCE).issue("user-1", "session-1", 60)
    with pytest.raises(InvalidToken):
        codec.decode(foreign)


def test_token_with_a_modified_payload_is_refused():
    header, _, signature = codec.issue("user-1", "session-1", 60).split(".")
    forged = f"{header}.{b64url(claims(sub='admin'))}.{signature}"
    with pytest.raises(InvalidToken):
        codec.decode(forged)


def test_wrong_audience_is_refused():
    with pytest.raises(InvalidToken):
        codec.decode(jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"))


def test_wrong_issuer_is_refused():
    with pytest.raises(InvalidToken):
        codec.decode(jwt.encode(claims(iss="not-estacionate"), SECRET, algorithm="HS256"))


def test_expired_token_is_refused():
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 600, exp=now - 60), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        codec.decode(token)


def test_token_issued_with_a_past_expiry_is_refused():
    with pytest.raises(InvalidToken):
        codec.decode(codec.issue("user-1", "session-1", ttl_seconds=-60))


@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
def test_other_hmac_algorithms_are_refused_even_with_the_right_secret(algorithm):
    with pytest.raises(InvalidToken):
        codec.decode(jwt.encode(claims(), SECRET, algorithm=algorithm))


@pytest.mark.parametrize("missing", ["sid", "sub", "exp", "iat", "iss", "aud", "jti"])
def test_token_missing_a_required_claim_is_refused(missing):
    with pytest.raises(InvalidToken):
        codec.decode(jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256"))


def test_wrong_purpose_is_refused():
    mfa_token = codec.issue("user-1", "session-1", ttl_seconds=60, purpose="mfa")
    with pytest.raises(InvalidToken, match="wrong purpose"):
        codec.decode(mfa_token)


def test_access_token_is_refused_where_another_purpose_is_expected():
    with pytest.raises(InvalidToken):
        codec.decode(codec.issue("user-1", "session-1", ttl_seconds=60), purpose="mfa")


def test_token_decodes_for_its_own_purpose():
    token = codec.issue("user-1", "session-1", ttl_seconds=60, purpose="mfa")
    assert codec.decode(token, purpose="mfa").purpose == "mfa"


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..."])
def test_garbage_is_refused(garbage):
    with pytest.raises(InvalidToken):
        codec.decode(garbage)
