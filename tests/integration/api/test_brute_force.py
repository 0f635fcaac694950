"""Per-account lockout (Redis counters) and per-IP / per-user rate limits (flask-limiter on Redis).

The test profile's lockout clock runs in seconds (base 1 s, cap 15 s) instead of minutes, so the
tests wait out real lockouts. Rate limits are lifted in the test profile; these tests build an
app with the production limits and give every test client an address of its own.
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app import create_app
from config.settings import Settings
from tests.support.waiting import wait_until


def attempt(stack, email, password):
    return stack.client().post("/v1/auth/login", json={"email": email, "password": password})


def wait_out_the_lock(stack, email, at_least):
    """Wait until Redis has dropped the account's lock (its TTL ran out), which took ``at_least`` s."""
    from app.security.lockout import current_guard
    from app.services.auth import account_key

    started = time.monotonic()
    with stack.context():
        guard, account = current_guard(), account_key(email)
        assert guard.retry_after(account) is not None, "the account is not locked"
        wait_until(lambda: guard.retry_after(account) is None, timeout=at_least + 10, message="the lock never lifted")
    assert time.monotonic() - started >= at_least / 2  # not lifted early (the lock was set just before)


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(stack, user):
    for _ in range(5):
        assert attempt(stack, user["email"], "wrong-password").status_code == 401
    locked = attempt(stack, user["email"], user["password"])
    assert locked.status_code == 429
    assert locked.get_json()["type"] == "/problems/account-locked"
    assert int(locked.headers["Retry-After"]) == 1
    wait_out_the_lock(stack, user["email"], at_least=1)
    assert attempt(stack, user["email"], user["password"]).status_code == 200


def test_the_lock_doubles_with_each_further_failure_and_success_resets_it(stack, user):
    for _ in range(5):
        attempt(stack, user["email"], "wrong-password")
    wait_out_the_lock(stack, user["email"], at_least=1)
    assert attempt(stack, user["email"], "wrong-password").status_code == 401  # the sixth failure
    assert int(attempt(stack, user["email"], user["password"]).headers["Retry-After"]) == 2
    wait_out_the_lock(stack, user["email"], at_least=2)
    assert attempt(stack, user["email"], user["password"]).status_code == 200
    for _ in range(4):  # the count starts again after a success
        assert attempt(stack, user["email"], "wrong-password").status_code == 401
    assert attempt(stack, user["email"], user["password"]).status_code == 200


def test_unknown_addresses_lock_exactly_like_real_ones(stack):
    ghost = f"ghost-{random.randrange(10**9)}@example.test"
    answers = [attempt(stack, ghost, "whatever-password").status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]


def test_lockouts_are_audited_without_the_address(stack, user):
    for _ in range(6):
        attempt(stack, user["email"], "wrong-password")
    rows = stack.sql(
        "SELECT action, metadata::text FROM audit_logs WHERE actor_id = %s AND action LIKE 'auth.%%' ORDER BY id",
        (user["id"],),
    )
    actions = [a for a, _ in rows]
    assert actions.count("auth.login_failed") == 5
    assert "auth.account_locked" in actions and "auth.login_locked" in actions
    assert not any(user["email"].lower() in meta.lower() for _, meta in rows)


def production_limits_app(stack):
    env = {**stack.env, "RATE_LIMIT_AUTH": "20/minute", "RATE_LIMIT_DEFAULT": "600/minute"}
    return create_app(Settings.from_env(env))


def client_from(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def random_address():
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def test_login_is_limited_to_twenty_a_minute_per_address(stack, user):
    app = production_limits_app(stack)
    client = client_from(app, random_address())
    answers = [
        client.post("/v1/auth/login", json={"email": f"nobody{i}@example.test", "password": "x"}).status_code
        for i in range(20)
    ]
    assert answers == [401] * 20
    limited = client.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert limited.status_code == 429
    assert limited.get_json()["type"] == "/problems/rate-limited"
    assert limited.content_type == "application/problem+json"
    assert int(limited.headers["Retry-After"]) > 0
    other = client_from(app, random_address())
    assert other.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]}).status_code == 200


def test_mfa_verify_shares_the_per_address_limit(stack):
    app = production_limits_app(stack)
    client = client_from(app, random_address())
    for _ in range(20):
        assert client.post("/v1/auth/mfa/verify", json={"mfa_token": "x", "code": "123456"}).status_code == 401
    assert client.post("/v1/auth/mfa/verify", json={"mfa_token": "x", "code": "123456"}).status_code == 429


def test_other_endpoints_allow_six_hundred_a_minute_per_user(stack):
    app = production_limits_app(stack)
    address = random_address()
    client = client_from(app, address)
    first, second = stack.create_user(), stack.create_user()
    tokens = []
    for person in (first, second):
        body = client.post("/v1/auth/login", json={"email": person["email"], "password": person["password"]})
        tokens.append({"Authorization": f"Bearer {body.get_json()['access_token']}"})
    statuses = [client.get("/v1/jobs?limit=1", headers=tokens[0]).status_code for _ in range(600)]
    assert statuses == [200] * 600
    limited = client.get("/v1/jobs?limit=1", headers=tokens[0])
    assert limited.status_code == 429 and limited.get_json()["type"] == "/problems/rate-limited"
    assert client.get("/v1/jobs?limit=1", headers=tokens[1]).status_code == 200  # same address, other user
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_registration_is_limited_to_ten_a_minute_per_address(stack, world):
    app = create_app(Settings.from_env({**stack.env, "RATE_LIMIT_REGISTER": "10/minute"}))
    client = client_from(app, random_address())
    form = {
        "email": "x@example.test",
        "password": "short",
        "first_name": "A",
        "last_name": "B",
        "rut": "1-9",
        "building_id": world.a.buildings["A1"],
        "unit_number": "101",
    }
    answers = [client.post("/v1/auth/register", json=form).status_code for _ in range(10)]
    assert answers == [422] * 10  # refused, but counted
    limited = client.post("/v1/auth/register", json=form)
    assert limited.status_code == 429 and limited.get_json()["type"] == "/problems/rate-limited"


# --- guessing the second factor across logins (issue 10, item 1) --------------------------------


def wrong_codes(user, count):
    """Six-digit codes that are certainly not valid now (none within two steps of the current one)."""
    import pyotp

    from app.security import totp

    now = totp.current_step()
    valid = {pyotp.TOTP(user["totp_secret"]).generate_otp(s) for s in range(now - 2, now + 3)}
    codes = []
    while len(codes) < count:
        code = f"{random.randrange(10**6):06d}"
        if code not in valid:
            codes.append(code)
    return codes


def audit_count(stack, user, action, reason=None):
    query = "SELECT count(*) FROM audit_logs WHERE actor_id = %s AND action = %s"
    params = [user["id"], action]
    if reason is not None:
        query += " AND metadata->>'reason' = %s"
        params.append(reason)
    return stack.sql(query, tuple(params))[0][0]


def long_lock_app(stack):
    """The test profile, but with production's lock clock, so a lock cannot expire mid-test."""
    return create_app(
        Settings.from_env({**stack.env, "LOGIN_LOCK_BASE_SECONDS": "60", "LOGIN_LOCK_MAX_SECONDS": "900"})
    )


def test_password_then_five_wrong_codes_from_new_addresses_locks_the_account(stack):
    app = long_lock_app(stack)
    user = stack.create_user(enroll_mfa=True)
    answers = []
    for _cycle in range(4):
        client = client_from(app, random_address())  # a new source address every cycle
        login = client.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
        answers.append(login.status_code)
        if login.status_code != 200:
            break
        for code in wrong_codes(user, 5):
            client.post("/v1/auth/mfa/verify", json={"mfa_token": login.get_json()["mfa_token"], "code": code})
    assert answers == [200, 200, 429]  # ten wrong codes lock the account; the third login is refused
    locked = client_from(app, random_address()).post(
        "/v1/auth/login", json={"email": user["email"], "password": user["password"]}
    )
    assert locked.status_code == 429 and locked.get_json()["type"] == "/problems/account-locked"
    assert 55 <= int(locked.headers["Retry-After"]) <= 60
    assert audit_count(stack, user, "mfa.verify_failed") == 10
    assert audit_count(stack, user, "auth.account_locked") == 1


def test_a_right_code_is_refused_while_the_account_is_locked(stack):
    app = long_lock_app(stack)
    user = stack.create_user(enroll_mfa=True)
    client = client_from(app, random_address())
    pending = client.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]}).get_json()
    for _ in range(5):  # someone else locks the account with wrong passwords meanwhile
        client.post("/v1/auth/login", json={"email": user["email"], "password": "wrong-password"})
    refused = client.post(
        "/v1/auth/mfa/verify", json={"mfa_token": pending["mfa_token"], "code": stack.totp_code(user)}
    )
    assert refused.status_code == 429 and refused.get_json()["type"] == "/problems/account-locked"
    assert int(refused.headers["Retry-After"]) >= 1
    assert audit_count(stack, user, "mfa.verified") == 0


def test_a_right_password_alone_does_not_reset_the_count_only_a_completed_login_does(stack):
    user = stack.create_user(enroll_mfa=True)
    for _ in range(4):
        assert attempt(stack, user["email"], "wrong-password").status_code == 401
    halfway = attempt(stack, user["email"], user["password"])  # right password, second factor still owed
    assert halfway.status_code == 200 and halfway.get_json()["mfa_required"] is True
    assert attempt(stack, user["email"], "wrong-password").status_code == 401  # the fifth failure
    assert attempt(stack, user["email"], user["password"]).status_code == 429
    wait_out_the_lock(stack, user["email"], at_least=1)
    assert stack.login(user)  # password and code: the login completes, and that resets the count
    for _ in range(4):
        assert attempt(stack, user["email"], "wrong-password").status_code == 401
    assert attempt(stack, user["email"], user["password"]).status_code == 200


# --- reserving attempts before checking them (items 1 and 2) ------------------------------------


@pytest.fixture
def racing(isolated_stack_factory):
    """A stack of its own and its API as production runs it (gunicorn, 2 processes x 16 threads).

    The per-process hashing cap is lifted so that it is not what keeps the checks few: the
    reservations must do that on their own.
    """
    own = isolated_stack_factory(PASSWORD_HASH_CONCURRENCY="32")
    return own, own.start_api()


def all_at_once(count, call):
    """Run ``call(i)`` for ``count`` threads released together; their answers in order."""
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_thirty_concurrent_verifies_on_one_token_check_at_most_five_codes(racing):
    stack, api_url = racing
    user = stack.create_user(enroll_mfa=True)
    token = attempt(stack, user["email"], user["password"]).get_json()["mfa_token"]
    codes = wrong_codes(user, 30)
    answers = all_at_once(
        30,
        lambda i: requests.post(
            f"{api_url}/v1/auth/mfa/verify", json={"mfa_token": token, "code": codes[i]}, timeout=30
        ),
    )
    kinds = [a.json()["type"] for a in answers]
    assert all(a.status_code == 401 for a in answers), [a.status_code for a in answers]
    assert kinds.count("/problems/mfa-required") == 5  # five codes checked, the rest refused unchecked
    assert audit_count(stack, user, "mfa.verify_failed") == 5


def test_thirty_two_concurrent_wrong_passwords_never_verify_more_than_the_threshold(racing):
    stack, api_url = racing
    user = stack.create_user()
    answers = all_at_once(
        32,
        lambda i: requests.post(
            f"{api_url}/v1/auth/login", json={"email": user["email"], "password": f"wrong-{i}"}, timeout=30
        ),
    )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429}, statuses
    checked = audit_count(stack, user, "auth.login_failed", "bad_password")
    assert checked == statuses.count(401) and 1 <= checked <= 5
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.json()["type"] == "/problems/account-locked" and int(refused.headers["Retry-After"]) >= 1


# --- IPv6 clients are their /64 (item 3) --------------------------------------------------------


def test_two_addresses_of_one_ipv6_slash_64_share_one_login_budget(stack, user):
    app = production_limits_app(stack)
    prefix = f"2001:db8:{random.randrange(1, 0xFFFF):x}:{random.randrange(1, 0xFFFF):x}"
    first, second = client_from(app, f"{prefix}::1"), client_from(app, f"{prefix}:aaaa:bbbb:cccc:dddd")
    answers = [
        (first if i % 2 else second)
        .post("/v1/auth/login", json={"email": f"nobody{i}@example.test", "password": "x"})
        .status_code
        for i in range(20)
    ]
    assert answers == [401] * 20
    limited = second.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert limited.status_code == 429 and limited.get_json()["type"] == "/problems/rate-limited"
    neighbour = client_from(app, f"2001:db8:{random.randrange(1, 0xFFFF):x}:1::1")  # another /64
    assert (
        neighbour.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]}).status_code == 200
    )


# --- changing the password is a password attempt too (item 4) ------------------------------------


def change(client, headers, current, new="another-long-password"):
    return client.post("/v1/auth/password", json={"current_password": current, "new_password": new}, headers=headers)


def test_the_password_change_is_refused_while_the_account_is_locked(stack, user):
    app = long_lock_app(stack)
    client = client_from(app, random_address())
    headers = stack.login(user)
    for _ in range(5):
        assert attempt(stack, user["email"], "wrong-password").status_code == 401
    refused = change(client, headers, user["password"])
    assert refused.status_code == 429 and refused.get_json()["type"] == "/problems/account-locked"
    assert int(refused.headers["Retry-After"]) >= 1
    assert audit_count(stack, user, "auth.password_changed") == 0


def test_wrong_current_passwords_count_toward_the_lockout(stack, user):
    headers = stack.login(user)
    for _ in range(5):
        wrong = change(stack.client(), headers, "not-my-password")
        assert wrong.status_code == 422 and wrong.get_json()["errors"][0]["pointer"] == "/current_password"
    assert change(stack.client(), headers, user["password"]).status_code == 429
    assert attempt(stack, user["email"], user["password"]).status_code == 429


def logged_in(client, person):
    body = client.post("/v1/auth/login", json={"email": person["email"], "password": person["password"]}).get_json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_a_revoked_token_cannot_spend_its_victims_budget(stack):
    app = create_app(Settings.from_env({**stack.env, "RATE_LIMIT_DEFAULT": "30/minute"}))
    victim = stack.create_user()
    home, attacker = client_from(app, random_address()), client_from(app, random_address())
    stolen, kept = logged_in(home, victim), logged_in(home, victim)
    assert home.post("/v1/auth/logout", headers=stolen).status_code == 204
    flood = [attacker.get("/v1/jobs?limit=1", headers=stolen).status_code for _ in range(40)]
    assert set(flood) <= {401, 429} and flood[:30] == [401] * 30  # the attacker spends their own address's budget
    assert [home.get("/v1/jobs?limit=1", headers=kept).status_code for _ in range(29)] == [200] * 29


# --- password hashing is capped per process (item 6) ---------------------------------------------


def test_logins_beyond_the_hashing_cap_answer_503_at_once_instead_of_queueing(stack):
    # One hash at a time per process, and a hash slow enough (about 0.2-0.5 s here) that eight
    # logins released together overlap.
    app = create_app(Settings.from_env({**stack.env, "PASSWORD_HASH_CONCURRENCY": "1", "ARGON2_TIME_COST": "12"}))
    ghosts = [f"ghost-{random.randrange(10**12)}@example.test" for _ in range(8)]
    answers = all_at_once(
        8,
        lambda i: client_from(app, random_address()).post("/v1/auth/login", json={"email": ghosts[i], "password": "x"}),
    )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 503} and statuses.count(503) >= 1, statuses
    for busy in (a for a in answers if a.status_code == 503):
        assert busy.get_json()["type"] == "/problems/service-unavailable" and int(busy.headers["Retry-After"]) >= 1
    failed = stack.sql(
        "SELECT count(*) FROM audit_logs WHERE action = 'auth.login_failed' AND metadata->>'reason' = 'unknown_account'"
        " AND trace_id = ANY(%s)",
        ([a.headers["X-Request-ID"] for a in answers],),
    )
    assert failed == [(statuses.count(401),)]  # a refused login checked nothing and counted nothing
