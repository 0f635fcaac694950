"""Sessions are revocable everywhere: a cap per user, listing, revoking, timeouts, bans, JWT hygiene."""

import time
import uuid

import jwt

from app import create_app
from app.security.sessions import SESSION_KEY
from config.settings import Settings
from tests.support.waiting import wait_until


def me(stack, headers):
    return stack.client().get("/v1/me", headers=headers)


def test_a_sixth_login_evicts_the_first_session(stack, user):
    tokens = [stack.login(user) for _ in range(6)]
    assert me(stack, tokens[0]).status_code == 401
    assert all(me(stack, t).status_code == 200 for t in tokens[1:])
    listed = stack.client().get("/v1/auth/sessions", headers=tokens[-1]).get_json()["items"]
    assert len(listed) == 5
    assert stack.sql(
        "SELECT count(*) FROM audit_logs WHERE action = 'session.evicted' AND actor_id = %s", (user["id"],)
    ) == [(1,)]


def test_sessions_are_listed_newest_first_with_the_current_one_marked(stack, user):
    first = (
        stack.client()
        .post(
            "/v1/auth/login",
            json={"email": user["email"], "password": user["password"]},
            headers={"User-Agent": "phone-app/1.0"},
        )
        .get_json()
    )
    second = stack.login(user)
    items = stack.client().get("/v1/auth/sessions", headers=second).get_json()["items"]
    assert [i["session_id"] for i in items][1] == first["session_id"]
    assert [i["current"] for i in items] == [True, False]
    assert items[1]["user_agent"] == "phone-app/1.0"
    assert items[0]["ip"] and items[0]["created_at"].endswith("Z")


def test_deleting_a_session_ends_it_and_others_sessions_are_not_found(stack, user):
    doomed = stack.client().post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    doomed_id, doomed_headers = (
        doomed.get_json()["session_id"],
        {"Authorization": f"Bearer {doomed.get_json()['access_token']}"},
    )
    keeper = stack.login(user)
    stranger = stack.login(stack.create_user())
    assert stack.client().delete(f"/v1/auth/sessions/{doomed_id}", headers=stranger).status_code == 404
    assert me(stack, doomed_headers).status_code == 200
    assert stack.client().delete(f"/v1/auth/sessions/{doomed_id}", headers=keeper).status_code == 204
    assert me(stack, doomed_headers).status_code == 401
    assert me(stack, keeper).status_code == 200


def test_logout_all_ends_every_session(stack, user):
    tokens = [stack.login(user) for _ in range(3)]
    assert stack.client().post("/v1/auth/logout-all", headers=tokens[0]).status_code == 204
    assert all(me(stack, t).status_code == 401 for t in tokens)


def test_changing_the_password_ends_the_other_sessions(stack, user):
    current, other = stack.login(user), stack.login(user)
    wrong = stack.client().post(
        "/v1/auth/password", json={"current_password": "nope", "new_password": "another-long-password"}, headers=current
    )
    assert wrong.status_code == 422 and wrong.get_json()["errors"][0]["pointer"] == "/current_password"
    weak = stack.client().post(
        "/v1/auth/password", json={"current_password": user["password"], "new_password": "short"}, headers=current
    )
    assert weak.status_code == 422 and weak.get_json()["errors"][0]["pointer"] == "/new_password"
    ok = stack.client().post(
        "/v1/auth/password",
        json={"current_password": user["password"], "new_password": "another-long-password"},
        headers=current,
    )
    assert ok.status_code == 204
    assert me(stack, other).status_code == 401
    assert me(stack, current).status_code == 200
    assert stack.login({**user, "password": "another-long-password"})
    old = stack.client().post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert old.status_code == 401


def session_ttl_ms(stack, session_id):
    """What is left of the session in Redis (-2 once its key expired): the clock the server obeys."""
    return stack.redis.pttl(SESSION_KEY.format(sid=session_id))


def test_idle_sessions_expire_and_activity_keeps_them_alive(stack, user):
    app = create_app(Settings.from_env({**stack.env, "SESSION_IDLE_SECONDS": "2"}))
    client = app.test_client()
    token = client.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    sid = token["session_id"]
    for _ in range(3):  # three times: idle for over half the timeout, then a request slides it back
        wait_until(lambda: 0 < session_ttl_ms(stack, sid) < 1000, timeout=5, message="the idle clock did not run")
        assert client.get("/v1/me", headers=headers).status_code == 200
        assert session_ttl_ms(stack, sid) > 1000, "activity did not slide the idle timeout"
    wait_until(lambda: session_ttl_ms(stack, sid) == -2, timeout=5, message="the idle session never expired")
    assert client.get("/v1/me", headers=headers).status_code == 401


def test_sessions_end_at_their_absolute_lifetime_despite_activity(stack, user):
    app = create_app(Settings.from_env({**stack.env, "SESSION_ABSOLUTE_SECONDS": "4"}))
    client = app.test_client()
    started = time.monotonic()
    token = client.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]}).get_json()
    assert token["expires_in"] == 4
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    answers = []

    def ended() -> bool:  # a request every 0.2 s: activity all along
        answers.append((time.monotonic() - started, client.get("/v1/me", headers=headers).status_code))
        return answers[-1][1] == 401

    wait_until(ended, timeout=10, interval=0.2, message="the session outlived its absolute lifetime")
    alive = [at for at, status in answers if status == 200]
    assert alive and alive[-1] >= 2.5, answers  # active until near the end, never idle
    assert {status for _, status in answers} == {200, 401} and answers[-1][1] == 401
    # Redis expiries are whole seconds, so the end may come up to a second before the 4 s mark.
    assert answers[-1][0] >= 3, answers


def test_a_ban_ends_every_session_at_once_and_refuses_login(stack, user):
    admin = stack.login(stack.create_user(role="platform_admin"))
    tokens = [stack.login(user) for _ in range(2)]
    banned = stack.client().post(f"/v1/admin/users/{user['id']}/ban", json={"reason": "abuse"}, headers=admin)
    assert banned.status_code == 200
    assert banned.get_json()["banned"] is True and banned.get_json()["banned_at"]
    assert all(me(stack, t).status_code == 401 for t in tokens)
    refused = stack.client().post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert refused.status_code == 401
    assert stack.client().post(f"/v1/admin/users/{user['id']}/unban", headers=admin).get_json()["banned"] is False
    assert me(stack, stack.login(user)).status_code == 200
    actions = [a for (a,) in stack.sql("SELECT action FROM audit_logs WHERE entity_id = %s", (user["id"],))]
    assert "user.banned" in actions and "user.unbanned" in actions
    assert not stack.sql("SELECT 1 FROM audit_logs WHERE metadata::text LIKE '%%abuse%%'")


def test_only_platform_admins_may_ban(stack, user, auth):
    victim = stack.create_user()
    response = stack.client().post(f"/v1/admin/users/{victim['id']}/ban", json={}, headers=auth)
    assert response.status_code == 403 and response.get_json()["type"] == "/problems/forbidden"
    assert me(stack, stack.login(victim)).status_code == 200


def test_banning_an_unknown_user_or_yourself_is_refused(stack):
    admin_user = stack.create_user(role="platform_admin")
    admin = stack.login(admin_user)
    assert stack.client().post(f"/v1/admin/users/{uuid.uuid4()}/ban", json={}, headers=admin).status_code == 404
    assert stack.client().post(f"/v1/admin/users/{admin_user['id']}/ban", json={}, headers=admin).status_code == 409


def forged_variants(stack, token):
    """Tokens that name a live session but must not be accepted."""
    claims = jwt.decode(token, options={"verify_signature": False})
    secret = stack.settings.secret_key
    header_none = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    import json

    payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return {
        "forged": jwt.encode(claims, "some-other-secret-of-enough-length-0123456789", algorithm="HS256"),
        "alg-none": f"{header_none}.{payload}.",
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 10}, secret, algorithm="HS256"),
        "wrong-audience": jwt.encode({**claims, "aud": "someone-else"}, secret, algorithm="HS256"),
        "wrong-issuer": jwt.encode({**claims, "iss": "someone-else"}, secret, algorithm="HS256"),
        "hs512": jwt.encode(claims, secret, algorithm="HS512"),
        "no-sid": jwt.encode({k: v for k, v in claims.items() if k != "sid"}, secret, algorithm="HS256"),
    }


def test_forged_none_expired_and_wrong_audience_tokens_are_401(stack, user):
    token = stack.login(user)["Authorization"].split()[1]
    for name, bad in forged_variants(stack, token).items():
        response = stack.client().get("/v1/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, name
        assert response.get_json()["type"] == "/problems/unauthenticated"
    assert stack.client().get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- a staff role granted to a live session that never gave a second factor (issue 10, item 5) --


def new_operator(stack, world):
    """An organization of this test's own, with an MFA-enrolled org_admin logged in and one building."""
    from tests.support.world import add_staff

    org = stack.client().post("/v1/organizations", json={"name": f"Org {uuid.uuid4().hex[:6]}"}, headers=world.admin)
    org_id = org.get_json()["id"]
    org_admin = stack.login(add_staff(stack, world.admin, org_id, "org_admin", []))
    building = stack.client().post(
        f"/v1/organizations/{org_id}/buildings",
        json={"name": "Torre", "address": "Calle 1", "contact_email": "ops@example.test"},
        headers=org_admin,
    )
    return org_id, org_admin, building.get_json()["id"]


def make_concierge(stack, org_admin, org_id, building_id, person):
    body = {"email": person["email"], "role": "concierge", "building_ids": [building_id]}
    made = stack.client().post(f"/v1/organizations/{org_id}/members", json=body, headers=org_admin)
    assert made.status_code == 201, made.get_json()


def test_a_resident_made_concierge_must_enroll_mfa_before_the_old_token_reads_anything(stack, world):
    org_id, org_admin, building_id = new_operator(stack, world)
    person = stack.create_user()
    old = stack.login(person)  # a password-only session: fine for a resident
    assert stack.client().get("/v1/bookings", headers=old).status_code == 200
    make_concierge(stack, org_admin, org_id, building_id, person)

    for method, path in (("get", "/v1/bookings"), ("get", "/v1/me"), ("get", "/v1/auth/sessions")):
        refused = getattr(stack.client(), method)(path, headers=old)
        assert refused.status_code == 403, (path, refused.get_json())
        assert refused.get_json()["type"] == "/problems/mfa-enrollment-required"

    # What it takes to fix it still works with the old token: enroll and confirm (a new, MFA session).
    import pyotp

    secret = stack.client().post("/v1/auth/mfa/enroll", headers=old).get_json()["secret"]
    confirmed = stack.client().post("/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=old)
    assert confirmed.status_code == 200, confirmed.get_json()
    fresh = {"Authorization": f"Bearer {confirmed.get_json()['access_token']}"}
    assert stack.client().get("/v1/bookings", headers=fresh).status_code == 200
    assert stack.client().get("/v1/bookings", headers=old).status_code == 401  # enrollment ended it


def test_a_staff_session_without_the_second_factor_must_log_in_again_when_the_user_has_mfa(stack, world):
    from tests.support.world import enroll_mfa

    org_id, org_admin, building_id = new_operator(stack, world)
    person = stack.create_user()
    old, spare = stack.login(person), stack.login(person)
    enroll_mfa(stack, person)  # MFA switched on outside any session (an operator, a migration)
    make_concierge(stack, org_admin, org_id, building_id, person)
    refused = stack.client().get("/v1/bookings", headers=old)
    assert refused.status_code == 401 and refused.get_json()["type"] == "/problems/mfa-required"
    assert stack.client().post("/v1/auth/logout", headers=old).status_code == 204
    assert stack.client().post("/v1/auth/logout-all", headers=spare).status_code == 204
    assert stack.client().get("/v1/bookings", headers=stack.login(person)).status_code == 200  # with its code
