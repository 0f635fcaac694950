"""Specification of ``config.settings``: profiles, production refusals and safe public views."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.settings import (
    DEV_DATABASE_URL,
    DEV_REDIS_URL,
    PROFILE_DEFAULTS,
    PROFILES,
    ConfigurationError,
    Settings,
    parse_keyring_spec,
)
from tests.support.fake_twilio import production_twilio_env

ROOT = Path(__file__).resolve().parents[3]

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
PROD_SECRET_KEY = "Zq8vN3pL0wXr7TbY2mKc5HsJ9aFe4GuD1oRi6PlW"
PROD_ENCRYPTION_KEYS = "k2025:" + base64.b64encode(KEY_A).decode()
PROD_BLIND_INDEX_KEY = base64.b64encode(bytes(range(40, 80))).decode()
PROD_DATABASE_URL = "postgresql://app:s3cr3t-db-pass@db.internal:5432/estacionate"
PROD_REDIS_URL = "redis://:hunter2-redis-pass@redis.internal:6379/0"

SETTINGS_VARIABLES = ("SECRET_KEY", "ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "DATABASE_URL", "REDIS_URL")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def production_env(**overrides: str | None) -> dict[str, str]:
    """A correct production environment; ``None`` removes a variable.

    With another ``APP_ENV`` it is those keys in that profile, without Twilio (recording only).
    """
    twilio = production_twilio_env() if overrides.get("APP_ENV", "production") == "production" else {}
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": PROD_SECRET_KEY,
        "ENCRYPTION_KEYS": PROD_ENCRYPTION_KEYS,
        "BLIND_INDEX_KEY": PROD_BLIND_INDEX_KEY,
        "DATABASE_URL": PROD_DATABASE_URL,
        "REDIS_URL": PROD_REDIS_URL,
        **twilio,
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def dev_keys() -> dict[str, str]:
    """What ``make run`` generates: development-marked keys."""
    return {
        "SECRET_KEY": "dev-" + "x" * 40,
        "ENCRYPTION_KEYS": "dev1:" + b64(KEY_A),
        "BLIND_INDEX_KEY": "dev:" + b64(KEY_B),
    }


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    return str(caught.value.code)


# --- production refusals --------------------------------------------------------------------


def test_configuration_error_is_a_system_exit_with_a_clear_sentence():
    error = ConfigurationError(["SECRET_KEY is not set", "REDIS_URL is not set"])
    assert isinstance(error, SystemExit)
    assert error.code == "Estacionate refuses to start: SECRET_KEY is not set; REDIS_URL is not set"
    assert error.problems == ["SECRET_KEY is not set", "REDIS_URL is not set"]


def test_production_with_proper_values_is_accepted():
    settings = Settings.from_env(production_env())
    assert settings.is_production
    assert settings.env == "production"
    assert settings.database_url == PROD_DATABASE_URL
    assert settings.redis_url == PROD_REDIS_URL
    assert settings.broker_url == PROD_REDIS_URL


@pytest.mark.parametrize("name", SETTINGS_VARIABLES)
def test_production_refuses_a_missing_variable(name):
    message = refusal(production_env(**{name: None}))
    assert message.startswith("Estacionate refuses to start")
    assert f"{name} is not set" in message


@pytest.mark.parametrize("name", SETTINGS_VARIABLES)
def test_production_refuses_an_empty_variable(name):
    assert f"{name} is not set" in refusal(production_env(**{name: ""}))


def test_production_refuses_a_development_secret_key():
    assert "SECRET_KEY is a development value" in refusal(production_env(SECRET_KEY="dev-" + "a" * 60))


@pytest.mark.parametrize("placeholder", ["change-me", "changeme", "secret", "CHANGE-ME"])
def test_production_refuses_a_placeholder_secret_key(placeholder):
    assert "SECRET_KEY" in refusal(production_env(SECRET_KEY=placeholder))


def test_production_refuses_a_development_blind_index_key():
    message = refusal(production_env(BLIND_INDEX_KEY="dev:" + b64(KEY_B)))
    assert "BLIND_INDEX_KEY is a development value" in message


@pytest.mark.parametrize("placeholder", ["change-me", "secret", "example"])
def test_production_refuses_a_placeholder_blind_index_key(placeholder):
    assert "BLIND_INDEX_KEY" in refusal(production_env(BLIND_INDEX_KEY=placeholder))


def test_production_refuses_a_development_encryption_key():
    message = refusal(production_env(ENCRYPTION_KEYS="dev1:" + b64(KEY_A)))
    assert "ENCRYPTION_KEYS contains a development key" in message


def test_production_refuses_a_development_key_anywhere_in_the_ring():
    spec = f"k2026:{b64(KEY_A)},dev1:{b64(KEY_B)}"
    assert "ENCRYPTION_KEYS contains a development key" in refusal(production_env(ENCRYPTION_KEYS=spec))


def test_production_refuses_a_placeholder_encryption_keys_value():
    assert "ENCRYPTION_KEYS is invalid" in refusal(production_env(ENCRYPTION_KEYS="change-me"))


def test_production_refuses_the_development_database_url():
    assert "DATABASE_URL is the development default" in refusal(production_env(DATABASE_URL=DEV_DATABASE_URL))


def test_production_refuses_the_development_redis_url():
    assert "REDIS_URL is the development default" in refusal(production_env(REDIS_URL=DEV_REDIS_URL))


def test_production_refuses_loopback_callbacks():
    message = refusal(production_env(ALLOW_LOOPBACK_CALLBACKS="true"))
    assert "ALLOW_LOOPBACK_CALLBACKS must be off in production" in message


def test_production_reports_every_problem_at_once():
    message = refusal(production_env(SECRET_KEY=None, DATABASE_URL=DEV_DATABASE_URL))
    assert "SECRET_KEY is not set" in message
    assert "DATABASE_URL is the development default" in message


def test_production_with_nothing_set_is_refused():
    message = refusal({"APP_ENV": "production"})
    for name in SETTINGS_VARIABLES:
        assert f"{name} is not set" in message


def test_importing_wsgi_in_production_without_keys_exits_with_a_sentence_not_a_traceback():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {*SETTINGS_VARIABLES, "CELERY_BROKER_URL", "ALLOW_LOOPBACK_CALLBACKS"}
    }
    env["APP_ENV"] = "production"
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "refuses to start" in result.stderr
    assert "Traceback" not in result.stderr


# --- every profile --------------------------------------------------------------------------


def test_unknown_profile_is_refused():
    assert "APP_ENV must be one of" in refusal(production_env(APP_ENV="staging"))


def test_development_accepts_development_values_and_default_urls():
    settings = Settings.from_env({"APP_ENV": "development", **dev_keys()})
    assert settings.database_url == DEV_DATABASE_URL
    assert settings.redis_url == DEV_REDIS_URL


def test_missing_app_env_means_development():
    assert Settings.from_env(dev_keys()).env == "development"


def test_test_profile_has_no_default_database_url():
    assert "DATABASE_URL is not set" in refusal({"APP_ENV": "test", "REDIS_URL": PROD_REDIS_URL, **dev_keys()})


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("k1:not*base64!", id="bad-base64"),
        pytest.param("k1:" + b64(bytes(16)), id="16-byte-key"),
        pytest.param("k1:" + b64(bytes(33)), id="33-byte-key"),
        pytest.param(f"k1:{b64(KEY_A)},k1:{b64(KEY_B)}", id="duplicate-id"),
        pytest.param("bad id:" + b64(KEY_A), id="space-in-id"),
        pytest.param(":" + b64(KEY_A), id="empty-id"),
        pytest.param("a" * 33 + ":" + b64(KEY_A), id="33-char-id"),
        pytest.param("k\u00e9:" + b64(KEY_A), id="non-ascii-id"),
        pytest.param(b64(KEY_A), id="no-id"),
        pytest.param(" , ", id="no-entries"),
    ],
)
def test_invalid_keyring_spec_is_refused_in_every_profile(profile, spec):
    env = production_env(APP_ENV=profile, ENCRYPTION_KEYS=spec)
    assert "ENCRYPTION_KEYS is invalid" in refusal(env)


@pytest.mark.parametrize("profile", PROFILES)
def test_short_blind_index_key_is_refused_in_every_profile(profile):
    env = production_env(APP_ENV=profile, BLIND_INDEX_KEY=b64(bytes(31)))
    assert "BLIND_INDEX_KEY must decode to at least 32 bytes" in refusal(env)


@pytest.mark.parametrize("profile", PROFILES)
def test_short_secret_key_is_refused_in_every_profile(profile):
    env = production_env(APP_ENV=profile, SECRET_KEY="s" * 31)
    assert "SECRET_KEY must be at least 32 characters" in refusal(env)


def test_non_numeric_integer_setting_is_refused():
    assert "MAX_CONTENT_LENGTH must be an integer" in refusal(production_env(MAX_CONTENT_LENGTH="lots"))


# --- profile defaults -----------------------------------------------------------------------


def test_test_profile_uses_fast_argon2_and_allows_loopback_callbacks():
    settings = Settings.from_env(production_env(APP_ENV="test"))
    assert (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism) == (1, 8192, 1)
    assert settings.allow_loopback_callbacks is True
    assert settings.webhook_retry_scale < 1.0
    assert settings.relay_interval_seconds < 5.0


def test_production_uses_full_argon2_cost_and_refuses_loopback_callbacks_by_default():
    settings = Settings.from_env(production_env())
    assert (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism) == (3, 65536, 4)
    assert settings.allow_loopback_callbacks is False
    assert settings.webhook_retry_scale == 1.0


def test_brute_force_and_hashing_limits_default_and_can_be_set():
    settings = Settings.from_env(production_env())
    assert (settings.mfa_lock_threshold, settings.password_hash_concurrency) == (10, 2)
    tuned = Settings.from_env(production_env(MFA_LOCK_THRESHOLD="6", PASSWORD_HASH_CONCURRENCY="1"))
    assert (tuned.mfa_lock_threshold, tuned.password_hash_concurrency) == (6, 1)


def test_a_hashing_cap_or_lock_threshold_below_one_is_refused_in_every_profile():
    assert "PASSWORD_HASH_CONCURRENCY must be at least 1" in refusal(production_env(PASSWORD_HASH_CONCURRENCY="0"))
    assert "MFA_LOCK_THRESHOLD must be at least 1" in refusal(production_env(APP_ENV="test", MFA_LOCK_THRESHOLD="0"))


def test_job_leases_are_a_minute_in_production_and_seconds_in_tests():
    production, testing = Settings.from_env(production_env()), Settings.from_env(production_env(APP_ENV="test"))
    assert production.job_lease_seconds == 60.0 and testing.job_lease_seconds < 10.0
    assert (production.job_max_unfinished_per_user, production.job_max_dispatches) == (100, 10)
    assert production.job_retention_days == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOB_LEASE_SECONDS", "0"),
        ("JOB_MAX_UNFINISHED_PER_USER", "0"),
        ("JOB_MAX_DISPATCHES", "0"),
        ("JOB_RETENTION_DAYS", "-1"),
    ],
)
def test_job_limits_below_one_are_refused(name, value):
    assert name in refusal(production_env(**{name: value}))


def test_development_allows_loopback_callbacks_by_default():
    assert Settings.from_env(dev_keys()).allow_loopback_callbacks is True


def test_test_profile_can_turn_loopback_callbacks_off():
    settings = Settings.from_env(production_env(APP_ENV="test", ALLOW_LOOPBACK_CALLBACKS="0"))
    assert settings.allow_loopback_callbacks is False


def test_explicit_broker_url_overrides_redis_url():
    settings = Settings.from_env(production_env(CELERY_BROKER_URL="redis://broker.internal:6379/3"))
    assert settings.broker_url == "redis://broker.internal:6379/3"


def test_a_callback_attempt_has_fifteen_seconds_by_default():
    settings = Settings.from_env(production_env())
    assert settings.webhook_deadline_seconds == 15.0
    assert settings.outbound_ca_bundle == ""


@pytest.mark.parametrize("value", ["0", "-1", "45.5", "600"])
def test_a_callback_deadline_outside_the_task_time_limit_is_refused(value):
    assert "WEBHOOK_DEADLINE_SECONDS must be above 0 and at most 45" in refusal(
        production_env(WEBHOOK_DEADLINE_SECONDS=value)
    )


# --- derived values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("postgresql://app:pw@db:5432/x", "postgresql+psycopg2://app:pw@db:5432/x"),
        ("postgres://app:pw@db:5432/x", "postgresql+psycopg2://app:pw@db:5432/x"),
        ("postgresql+psycopg2://app:pw@db:5432/x", "postgresql+psycopg2://app:pw@db:5432/x"),
    ],
)
def test_sqlalchemy_url_names_the_psycopg2_driver(database_url, expected):
    assert Settings.from_env(production_env(DATABASE_URL=database_url)).sqlalchemy_url == expected


def test_blind_index_key_bytes_strips_the_development_marker():
    settings = Settings.from_env({"APP_ENV": "development", **dev_keys()})
    assert settings.blind_index_key_bytes() == KEY_B


def test_as_public_dict_hides_secrets_and_url_passwords():
    settings = Settings.from_env(production_env())
    public = settings.as_public_dict()
    assert not {"secret_key", "encryption_keys", "blind_index_key"} & public.keys()
    rendered = repr(public)
    for secret in (PROD_SECRET_KEY, PROD_ENCRYPTION_KEYS, PROD_BLIND_INDEX_KEY, "s3cr3t-db-pass", "hunter2-redis-pass"):
        assert secret not in rendered
    assert public["database_url"] == "postgresql://***@db.internal:5432/estacionate"
    assert public["redis_url"] == "redis://***@redis.internal:6379/0"
    assert public["broker_url"] == "redis://***@redis.internal:6379/0"
    assert public["env"] == "production"
    assert public["jwt_issuer"] == "estacionate"


def test_repr_of_settings_does_not_show_secrets():
    rendered = repr(Settings.from_env(production_env()))
    for secret in (PROD_SECRET_KEY, PROD_ENCRYPTION_KEYS, PROD_BLIND_INDEX_KEY):
        assert secret not in rendered


# --- parse_keyring_spec ---------------------------------------------------------------------


def test_parse_keyring_spec_keeps_order_so_the_first_key_is_primary():
    parsed = parse_keyring_spec(f"new:{b64(KEY_A)},old:{b64(KEY_B)}")
    assert parsed == [("new", KEY_A), ("old", KEY_B)]


def test_parse_keyring_spec_tolerates_whitespace_and_empty_entries():
    assert parse_keyring_spec(f" new:{b64(KEY_A)} , ,old:{b64(KEY_B)}, ") == [("new", KEY_A), ("old", KEY_B)]


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "k1:%%%%",
        "k1:" + b64(bytes(31)),
        f"k1:{b64(KEY_A)},k1:{b64(KEY_A)}",
        "a/b:" + b64(KEY_A),
        "k1" + b64(KEY_A),
    ],
)
def test_parse_keyring_spec_refuses_invalid_specs(spec):
    with pytest.raises(ValueError):
        parse_keyring_spec(spec)


key_ids = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)


@given(
    st.lists(st.tuples(key_ids, st.binary(min_size=32, max_size=32)), min_size=1, max_size=6, unique_by=lambda e: e[0])
)
def test_parse_keyring_spec_round_trips_any_valid_ring(entries):
    spec = ",".join(f"{key_id}:{b64(key)}" for key_id, key in entries)
    assert parse_keyring_spec(spec) == entries


# --- Twilio (API.md "Notifications (WhatsApp)") ---------------------------------------------


def test_twilio_settings_default_to_recording_mode_and_the_real_api_host():
    settings = Settings.from_env(production_env(APP_ENV="test"))
    assert (settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_whatsapp_from) == ("", "", "")
    assert settings.twilio_api_base == "https://api.twilio.com"
    assert settings.public_base_url == ""
    assert settings.twilio_content_sids == {}


@pytest.mark.parametrize("name", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM", "PUBLIC_BASE_URL"])
def test_production_refuses_to_start_without_twilio_in_one_clear_line(name):
    message = refusal(production_env(**{name: None}))
    assert (
        message == f"Estacionate refuses to start: production sends WhatsApp through Twilio, so {name} must be set too"
    )
    assert "\n" not in message


def test_production_names_every_missing_twilio_setting_in_one_sentence():
    env = production_env(
        TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None, TWILIO_WHATSAPP_FROM=None, PUBLIC_BASE_URL=None
    )
    assert refusal(env) == (
        "Estacionate refuses to start: production sends WhatsApp through Twilio, so TWILIO_ACCOUNT_SID, "
        "TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM, PUBLIC_BASE_URL must be set too"
    )


@pytest.mark.parametrize("profile", ["development", "test"])
def test_an_account_sid_without_the_rest_is_refused_in_every_profile(profile):
    message = refusal(production_env(APP_ENV=profile, TWILIO_ACCOUNT_SID="AC" + "a" * 32))
    assert "TWILIO_ACCOUNT_SID is set, so TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM, PUBLIC_BASE_URL must be set too" in (
        message
    )


def test_without_an_account_sid_development_and_test_start_and_only_record():
    assert Settings.from_env(production_env(APP_ENV="development")).twilio_account_sid == ""


def test_twilio_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        production_env(
            APP_ENV="test",
            TWILIO_ACCOUNT_SID="AC" + "a" * 32,
            TWILIO_AUTH_TOKEN="tok-" + "b" * 28,
            TWILIO_WHATSAPP_FROM="whatsapp:+14155238886",
            TWILIO_API_BASE="http://127.0.0.1:8089/",
            PUBLIC_BASE_URL="https://api.estacionate.cl/",
            TWILIO_CONTENT_SIDS='{"booking_confirmed": "HX' + "c" * 32 + '"}',
        )
    )
    assert settings.twilio_account_sid == "AC" + "a" * 32
    assert settings.twilio_auth_token == "tok-" + "b" * 28
    assert settings.twilio_whatsapp_from == "whatsapp:+14155238886"
    # Trailing slashes go, so PUBLIC_BASE_URL + path is exactly the URL Twilio signs.
    assert settings.twilio_api_base == "http://127.0.0.1:8089"
    assert settings.public_base_url == "https://api.estacionate.cl"
    assert settings.twilio_content_sids == {"booking_confirmed": "HX" + "c" * 32}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param('["HX1"]', id="a-list"),
        pytest.param('{"booking_confirmed": 7}', id="a-number"),
        pytest.param('{"booking_confirmed": ""}', id="empty-sid"),
    ],
)
def test_malformed_content_sids_are_refused_in_every_profile(profile, raw):
    message = refusal(production_env(APP_ENV=profile, TWILIO_CONTENT_SIDS=raw))
    assert "TWILIO_CONTENT_SIDS must be a JSON object" in message


@pytest.mark.parametrize("name", ["TWILIO_API_BASE", "PUBLIC_BASE_URL"])
@pytest.mark.parametrize("raw", ["api.twilio.com", "ftp://api.twilio.com", "https://", "http://[::1"])
def test_twilio_urls_must_be_http_urls(name, raw):
    assert f"{name} must be an http(s) URL" in refusal(production_env(APP_ENV="test", **{name: raw}))


@pytest.mark.parametrize("raw", ["+14155238886", "whatsapp:14155238886", "sms:+14155238886"])
def test_the_whatsapp_sender_must_be_a_whatsapp_address(raw):
    assert "TWILIO_WHATSAPP_FROM must look like whatsapp:+" in refusal(
        production_env(APP_ENV="test", TWILIO_WHATSAPP_FROM=raw)
    )


def test_the_twilio_auth_token_is_hidden_from_logs_and_repr():
    settings = Settings.from_env(production_env(APP_ENV="test", TWILIO_AUTH_TOKEN="tw-secret-" + "z" * 22))
    assert "twilio_auth_token" not in settings.as_public_dict()
    assert "tw-secret-" not in repr(settings.as_public_dict())
    assert "tw-secret-" not in repr(settings)


# --- construction (pydantic-settings) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "sentence"),
    [
        ("JOB_LEASE_SECONDS", "soon", "JOB_LEASE_SECONDS must be a number"),
        ("WEB_THREADS", "many", "WEB_THREADS must be an integer"),
        ("ALLOW_LOOPBACK_CALLBACKS", "perhaps", "ALLOW_LOOPBACK_CALLBACKS must be true or false"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_variable(name, value, sentence):
    message = refusal(production_env(APP_ENV="test", **{name: value}))
    assert message.startswith("Estacionate refuses to start")
    assert sentence in message


def test_a_bad_web_threads_is_named_once_not_through_the_cap_derived_from_it():
    assert refusal(production_env(WEB_THREADS="x")) == "Estacionate refuses to start: WEB_THREADS must be an integer"


def test_every_badly_typed_variable_is_named_at_once():
    message = refusal(production_env(MAX_CONTENT_LENGTH="lots", SESSION_IDLE_SECONDS="long"))
    assert "MAX_CONTENT_LENGTH must be an integer" in message
    assert "SESSION_IDLE_SECONDS must be an integer" in message


def test_profile_defaults_name_only_real_settings_and_differ_from_the_field_default():
    for profile, overrides in PROFILE_DEFAULTS.items():
        assert profile in PROFILES
        for name, value in overrides.items():
            assert name in Settings.model_fields, name
            assert Settings.model_fields[name].default != value, name


def test_an_empty_variable_counts_as_unset():
    settings = Settings.from_env(production_env(APP_ENV="test", JOB_LEASE_SECONDS="", TWILIO_API_BASE=""))
    assert settings.job_lease_seconds == 4.0
    assert settings.twilio_api_base == "https://api.twilio.com"


def test_the_given_mapping_is_read_not_the_process_environment(monkeypatch):
    for name, value in production_env(SESSION_IDLE_SECONDS="7").items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().session_idle_seconds == 7
    assert Settings.from_env(production_env()).session_idle_seconds == 3600


def test_settings_are_immutable():
    settings = Settings.from_env(production_env())
    with pytest.raises(ValueError):
        settings.session_idle_seconds = 1  # type: ignore[misc]
