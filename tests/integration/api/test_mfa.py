"""TOTP second factor: enrollment, verification, replay protection, recovery codes, disabling."""

import subprocess
import time
import urllib.parse
from datetime import UTC, datetime

import pyotp

from app.security import totp
from tests.support.waiting import wait_until


def login(stack, user):
    response = stack.client().post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def oathtool_code(oathtool, secret, at=None):
    args = [oathtool, "--totp", "-b", secret]
    if at is not None:
        args += ["--now", datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


def verify(stack, mfa_token, **factor):
    return stack.client().post("/v1/auth/mfa/verify", json={"mfa_token": mfa_token, **factor})


def wait_for_fresh_step():
    """Start at the beginning of a 30 s step so 'this step' and 'the next' stay valid for the test."""
    wait_until(lambda: time.time() % 30 <= 20, timeout=11, interval=0.1)


def test_a_cli_admin_enrolls_at_first_login_with_a_standard_authenticator(stack, oathtool):
    wait_for_fresh_step()
    admin = stack.create_user(role="platform_admin", enroll_mfa=False)
    first = login(stack, admin)
    assert first["mfa_enrollment_required"] is True and first["expires_in"] == 300
    enrollment = bearer(first["mfa_token"])

    # The enrollment token can do nothing but enroll and confirm.
    assert stack.client().get("/v1/me", headers=enrollment).status_code == 401
    assert stack.client().post("/v1/system/ping", json={}, headers=enrollment).status_code == 401

    enrolled = stack.client().post("/v1/auth/mfa/enroll", headers=enrollment)
    assert enrolled.status_code == 200
    secret, uri = enrolled.get_json()["secret"], enrolled.get_json()["otpauth_uri"]
    parsed = urllib.parse.urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert urllib.parse.parse_qs(parsed.query)["issuer"] == ["Estacionate"]
    assert admin["email"] in urllib.parse.unquote(parsed.path)

    confirmed = stack.client().post(
        "/v1/auth/mfa/confirm", json={"code": oathtool_code(oathtool, secret)}, headers=enrollment
    )
    assert confirmed.status_code == 200, confirmed.get_json()
    body = confirmed.get_json()
    assert len(body["recovery_codes"]) == 10 and len(set(body["recovery_codes"])) == 10
    me = stack.client().get("/v1/me", headers=bearer(body["access_token"])).get_json()
    assert me["mfa_enabled"] is True

    # From now on the password alone gives only an mfa_token; the authenticator's next code completes it.
    again = login(stack, admin)
    assert again["mfa_required"] is True and "access_token" not in again
    done = verify(stack, again["mfa_token"], code=oathtool_code(oathtool, secret, at=time.time() + 30))
    assert done.status_code == 200, done.get_json()
    assert stack.client().get("/v1/me", headers=bearer(done.get_json()["access_token"])).status_code == 200


def test_a_code_is_accepted_once(stack):
    user = stack.create_user(enroll_mfa=True)
    code = pyotp.TOTP(user["totp_secret"]).now()
    assert verify(stack, login(stack, user)["mfa_token"], code=code).status_code == 200
    replay = verify(stack, login(stack, user)["mfa_token"], code=code)
    assert replay.status_code == 401
    assert replay.get_json()["type"] == "/problems/mfa-required"


def test_codes_within_one_step_of_drift_are_accepted_and_beyond_refused(stack):
    wait_for_fresh_step()
    user = stack.create_user(enroll_mfa=True)
    generator = pyotp.TOTP(user["totp_secret"])
    now = totp.current_step()
    too_far = verify(stack, login(stack, user)["mfa_token"], code=generator.generate_otp(now + 3))
    assert too_far.status_code == 401
    behind = verify(stack, login(stack, user)["mfa_token"], code=generator.generate_otp(now - 1))
    assert behind.status_code == 200


def test_a_recovery_code_works_once(stack):
    user = stack.create_user()
    headers = stack.login(user)
    stack.client().post("/v1/auth/mfa/enroll", headers=headers)
    secret = stack.client().post("/v1/auth/mfa/enroll", headers=headers).get_json()["secret"]
    confirm = stack.client().post("/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=headers)
    codes = confirm.get_json()["recovery_codes"]
    first = verify(stack, login(stack, user)["mfa_token"], recovery_code=codes[0].upper().replace("-", " "))
    assert first.status_code == 200
    second = verify(stack, login(stack, user)["mfa_token"], recovery_code=codes[0])
    assert second.status_code == 401 and second.get_json()["type"] == "/problems/mfa-required"
    assert verify(stack, login(stack, user)["mfa_token"], recovery_code=codes[1]).status_code == 200
    hashes = stack.sql("SELECT code_hash FROM mfa_recovery_codes WHERE user_id = %s", (user["id"],))
    assert len(hashes) == 10 and all(codes[0].encode() not in bytes(h) for (h,) in hashes)


def test_an_mfa_token_works_once(stack):
    user = stack.create_user(enroll_mfa=True)
    token = login(stack, user)["mfa_token"]
    assert verify(stack, token, code=stack.totp_code(user)).status_code == 200
    again = verify(stack, token, code=stack.totp_code(user))
    assert again.status_code == 401 and again.get_json()["type"] == "/problems/unauthenticated"


def test_five_wrong_codes_invalidate_the_mfa_token(stack):
    user = stack.create_user(enroll_mfa=True)
    token = login(stack, user)["mfa_token"]
    for _ in range(5):
        assert verify(stack, token, code="000000").status_code == 401
    right = verify(stack, token, code=stack.totp_code(user))
    assert right.status_code == 401 and right.get_json()["type"] == "/problems/unauthenticated"
    assert stack.sql(
        "SELECT count(*) FROM audit_logs WHERE action = 'mfa.verify_failed' AND actor_id = %s", (user["id"],)
    ) == [(5,)]


def test_tokens_are_not_interchangeable(stack):
    user = stack.create_user(enroll_mfa=True)
    mfa_token = login(stack, user)["mfa_token"]
    assert stack.client().get("/v1/me", headers=bearer(mfa_token)).status_code == 401
    access = stack.login(user)["Authorization"].split()[1]
    assert verify(stack, access, code="123456").status_code == 401


def test_verify_needs_exactly_one_factor(stack):
    both = verify(stack, "x", code="123456", recovery_code="abcde-fghij")
    neither = verify(stack, "x")
    assert both.status_code == neither.status_code == 422


def test_enrolling_revokes_the_users_other_sessions(stack):
    user = stack.create_user()
    old_a, old_b = stack.login(user), stack.login(user)
    secret = stack.client().post("/v1/auth/mfa/enroll", headers=old_a).get_json()["secret"]
    confirmed = stack.client().post("/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=old_a)
    assert confirmed.status_code == 200
    assert stack.client().get("/v1/me", headers=old_a).status_code == 401
    assert stack.client().get("/v1/me", headers=old_b).status_code == 401
    assert stack.client().get("/v1/me", headers=bearer(confirmed.get_json()["access_token"])).status_code == 200
    actions = {a for (a,) in stack.sql("SELECT action FROM audit_logs WHERE actor_id = %s", (user["id"],))}
    assert {"mfa.enrollment_started", "mfa.enabled", "session.revoked"} <= actions


def test_a_wrong_confirmation_code_changes_nothing(stack):
    user = stack.create_user()
    headers = stack.login(user)
    stack.client().post("/v1/auth/mfa/enroll", headers=headers)
    refused = stack.client().post("/v1/auth/mfa/confirm", json={"code": "000000"}, headers=headers)
    assert refused.status_code == 401
    assert stack.client().get("/v1/me", headers=headers).get_json()["mfa_enabled"] is False


def test_disabling_needs_password_and_code_and_ends_other_sessions(stack):
    user = stack.create_user(enroll_mfa=True)
    current, other = stack.login(user), stack.login(user)
    wrong = stack.client().post("/v1/auth/mfa/disable", json={"password": "not-it", "code": "000000"}, headers=current)
    assert wrong.status_code == 403
    ok = stack.client().post(
        "/v1/auth/mfa/disable", json={"password": user["password"], "code": stack.totp_code(user)}, headers=current
    )
    assert ok.status_code == 204
    assert stack.client().get("/v1/me", headers=other).status_code == 401
    assert stack.client().get("/v1/me", headers=current).get_json()["mfa_enabled"] is False
    assert "access_token" in login(stack, user)


def test_roles_that_require_mfa_cannot_disable_it(stack):
    admin = stack.create_user(role="platform_admin")
    headers = stack.login(admin)
    refused = stack.client().post(
        "/v1/auth/mfa/disable", json={"password": admin["password"], "code": stack.totp_code(admin)}, headers=headers
    )
    assert refused.status_code == 403
    assert stack.client().get("/v1/me", headers=headers).get_json()["mfa_enabled"] is True


def test_the_totp_secret_is_encrypted_at_rest(stack):
    user = stack.create_user(enroll_mfa=True)
    (blob,) = stack.sql("SELECT mfa_secret_encrypted FROM users WHERE id = %s", (user["id"],))[0]
    assert user["totp_secret"].encode() not in bytes(blob)
