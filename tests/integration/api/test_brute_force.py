"""Per-account lockout (Redis counters) and per-IP / per-user rate limits (flask-limiter on Redis).

The test profile's lockout clock runs in seconds (base 1 s, cap 15 s) instead of minutes, so the
tests wait out real lockouts. Rate limits are lifted in the test profile; these tests build an
app with the production limits and give every test client an address of its own.
"""

import random
import time

from app import create_app
from config.settings import Settings


def attempt(stack, email, password):
    return stack.client().post("/v1/auth/login", json={"email": email, "password": password})


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(stack, user):
    for _ in range(5):
        assert attempt(stack, user["email"], "wrong-password").status_code == 401
    locked = attempt(stack, user["email"], user["password"])
    assert locked.status_code == 429
    assert locked.get_json()["type"] == "/problems/account-locked"
    assert int(locked.headers["Retry-After"]) == 1
    time.sleep(1.1)
    assert attempt(stack, user["email"], user["password"]).status_code == 200


def test_the_lock_doubles_with_each_further_failure_and_success_resets_it(stack, user):
    for _ in range(5):
        attempt(stack, user["email"], "wrong-password")
    time.sleep(1.1)
    assert attempt(stack, user["email"], "wrong-password").status_code == 401  # the sixth failure
    assert int(attempt(stack, user["email"], user["password"]).headers["Retry-After"]) == 2
    time.sleep(2.1)
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
