"""Logging in and out; sessions live in Redis and are checked on every request."""

from app.security.sessions import SESSION_KEY


def login(stack, email, password):
    return stack.client().post("/v1/auth/login", json={"email": email, "password": password})


def test_login_answers_a_bearer_token_for_the_session(stack, user):
    response = login(stack, user["email"], user["password"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["access_token"].count(".") == 2
    assert body["session_id"]


def test_email_matches_regardless_of_case_and_surrounding_spaces(stack, user):
    assert login(stack, f"  {user['email'].upper()} ", user["password"]).status_code == 200


def test_me_shows_the_decrypted_email(stack, user, auth):
    me = stack.client().get("/v1/me", headers=auth).get_json()
    assert me["id"] == user["id"]
    assert me["email"] == user["email"]
    assert me["roles"] == [] and me["memberships"] == [] and me["resident"] is None
    assert me["mfa_enabled"] is False


def test_wrong_password_and_unknown_email_get_the_same_answer(stack, user):
    wrong = login(stack, user["email"], "not-the-password")
    unknown = login(stack, "nobody-" + user["email"], user["password"])
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda doc: {k: v for k, v in doc.items() if k != "trace_id"}  # noqa: E731
    assert strip(wrong.get_json()) == strip(unknown.get_json())
    assert wrong.get_json()["type"] == "/problems/unauthenticated"


def test_deleting_the_session_in_redis_ends_it_at_once(stack, user):
    body = login(stack, user["email"], user["password"]).get_json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert stack.client().get("/v1/me", headers=headers).status_code == 200
    assert stack.redis.delete(SESSION_KEY.format(sid=body["session_id"])) == 1
    response = stack.client().get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["type"] == "/problems/unauthenticated"


def test_logout_ends_this_session_only(stack, user):
    first = stack.login(user)
    second = stack.login(user)
    response = stack.client().post("/v1/auth/logout", headers=first)
    assert response.status_code == 204
    assert stack.client().get("/v1/me", headers=first).status_code == 401
    assert stack.client().get("/v1/me", headers=second).status_code == 200


def test_requests_without_a_usable_token_are_401(stack):
    for headers in [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer x.y.z"},
    ]:
        response = stack.client().get("/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.content_type == "application/problem+json"


def test_a_deactivated_user_can_neither_log_in_nor_use_a_token(stack, user):
    headers = stack.login(user)
    stack.sql("UPDATE users SET is_active = false WHERE id = %s", (user["id"],))
    assert stack.client().get("/v1/me", headers=headers).status_code == 401
    assert login(stack, user["email"], user["password"]).status_code == 401


def test_login_body_is_validated(stack):
    response = stack.client().post("/v1/auth/login", json={"email": "a@b.c"})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/password"


def test_logins_and_failures_are_audited_without_the_email(stack, user):
    login(stack, user["email"], "wrong-password")
    login(stack, user["email"], user["password"])
    rows = stack.sql(
        "SELECT action, actor_type, metadata::text, ip FROM audit_logs WHERE actor_id = %s ORDER BY id", (user["id"],)
    )
    actions = [r[0] for r in rows]
    assert actions == ["auth.login_failed", "auth.login"]
    assert all(r[1] == "human" for r in rows)
    assert '"reason": "bad_password"' in rows[0][2]
    assert rows[1][3] is not None
    assert not any(user["email"].lower() in str(r).lower() for r in rows)


def test_a_failed_login_for_an_unknown_email_is_audited_anonymously(stack):
    email = "ghost-audit@example.test"
    login(stack, email, "whatever-password")
    rows = stack.sql("SELECT actor_id, metadata::text FROM audit_logs WHERE action = 'auth.login_failed'")
    assert any(actor is None and "unknown_account" in meta for actor, meta in rows)
    assert not stack.sql("SELECT 1 FROM audit_logs WHERE metadata::text ILIKE %s", (f"%{email}%",))


def test_an_unknown_email_costs_the_same_password_hash_as_a_wrong_password(stack, user):
    """Timing must not reveal who has an account: the unknown address is checked against a dummy hash.

    Interleaved medians: without the dummy hash the unknown address would answer in a fraction of
    the time (no argon2 work at all), far below the 0.6 bound.
    """
    import statistics
    import time as clock

    def timed(email):
        started = clock.perf_counter()
        assert stack.client().post("/v1/auth/login", json={"email": email, "password": "wrong-pw"}).status_code
        return clock.perf_counter() - started

    wrong, unknown = [], []
    for i in range(12):
        other = stack.create_user()  # fresh accounts: no lockout kicks in
        wrong.append(timed(other["email"]))
        unknown.append(timed(f"nobody-{i}-{other['email']}"))
    assert statistics.median(unknown) >= 0.6 * statistics.median(wrong)


def test_a_hash_made_under_older_argon2_parameters_is_upgraded_at_login(stack, user):
    """Raising the cost protects existing accounts too: the next login re-hashes under the new parameters."""
    from argon2 import PasswordHasher

    old = PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1).hash(user["password"])
    stack.sql("UPDATE users SET password_hash = %s WHERE id = %s", (old, user["id"]))
    assert login(stack, user["email"], user["password"]).status_code == 200
    ((stored,),) = stack.sql("SELECT password_hash FROM users WHERE id = %s", (user["id"],))
    assert stored != old
    settings = stack.settings
    current = PasswordHasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    assert current.verify(stored, user["password"]) and not current.check_needs_rehash(stored)
    assert login(stack, user["email"], user["password"]).status_code == 200
    ((again,),) = stack.sql("SELECT password_hash FROM users WHERE id = %s", (user["id"],))
    assert again == stored  # already current: left alone
