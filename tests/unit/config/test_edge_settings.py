"""Specification of the edge settings: metrics token, statement timeout, long-poll caps."""

from __future__ import annotations

import pytest

from config.settings import ConfigurationError, Settings
from tests.unit.config.test_settings import production_env

DEV = {
    "APP_ENV": "test",
    "DATABASE_URL": "postgresql://127.0.0.1/x",
    "REDIS_URL": "redis://127.0.0.1/0",
    "SECRET_KEY": "dev-" + "k" * 40,
    "ENCRYPTION_KEYS": production_env()["ENCRYPTION_KEYS"],
    "BLIND_INDEX_KEY": production_env()["BLIND_INDEX_KEY"],
}


def test_defaults():
    settings = Settings.from_env(DEV)
    assert settings.metrics_token == ""
    assert settings.db_statement_timeout_ms == 15000
    assert settings.longpoll_max_per_user == 4
    assert settings.longpoll_max_per_process == 12  # gunicorn's 16 threads, less 4 kept for short requests


@pytest.mark.parametrize(("threads", "cap"), [("16", 12), ("32", 24), ("64", 48), ("8", 4), ("3", 1), ("1", 1)])
def test_the_process_cap_follows_the_thread_count(threads, cap):
    assert Settings.from_env({**DEV, "WEB_THREADS": threads}).longpoll_max_per_process == cap


def test_explicit_caps_win():
    settings = Settings.from_env({**DEV, "WEB_THREADS": "32", "LONGPOLL_MAX_PER_PROCESS": "3"})
    assert settings.longpoll_max_per_process == 3


@pytest.mark.parametrize(
    "override",
    [{"DB_STATEMENT_TIMEOUT_MS": "-1"}, {"LONGPOLL_MAX_PER_USER": "-1"}, {"LONGPOLL_MAX_PER_PROCESS": "-2"}],
)
def test_negative_values_are_refused(override):
    with pytest.raises(ConfigurationError):
        Settings.from_env({**DEV, **override})


def test_production_accepts_no_metrics_token_or_a_long_random_one():
    assert Settings.from_env(production_env()).metrics_token == ""
    token = "Jm3v" * 10
    assert Settings.from_env({**production_env(), "METRICS_TOKEN": token}).metrics_token == token


@pytest.mark.parametrize("token", ["secret", "change-me", "x" * 31])
def test_production_refuses_a_guessable_metrics_token(token):
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN"):
        Settings.from_env({**production_env(), "METRICS_TOKEN": token})


def test_the_metrics_token_is_hidden():
    settings = Settings.from_env({**DEV, "METRICS_TOKEN": "visible-nowhere-" * 3})
    assert "visible-nowhere" not in repr(settings)
    assert "visible-nowhere" not in str(settings.as_public_dict())
