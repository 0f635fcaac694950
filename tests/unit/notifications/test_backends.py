"""Specification of the notification backends that need no network: recording, errors, construction."""

from __future__ import annotations

import pickle
import re

import pytest
from twilio.base.exceptions import TwilioException

from app.domain.notifications import FailureClass, SendFailure, render
from app.notifications import (
    RECORDED_SID_PREFIX,
    STATUS_CALLBACK_PATH,
    NotificationBackend,
    OutboundMessage,
    ProviderError,
    RecordingBackend,
    SendResult,
    TwilioBackend,
    backend_from_settings,
    status_callback_url,
)
from app.notifications.twilio_backend import BaseUrlHttpClient
from config.settings import ConfigurationError, Settings

MESSAGE = OutboundMessage(
    to="+56987654321", rendered=render("password_reset_code", {"code": "042917", "valid_minutes": 10})
)
TWILIO = {
    "account_sid": "AC" + "a" * 32,
    "auth_token": "t" * 32,
    "whatsapp_from": "whatsapp:+14155238886",
    "status_callback_url": "https://api.example.cl" + STATUS_CALLBACK_PATH,
}


def test_both_backends_are_notification_backends():
    assert isinstance(RecordingBackend(), NotificationBackend)
    assert isinstance(TwilioBackend(**TWILIO), NotificationBackend)


def test_the_recording_backend_returns_a_recognisable_sid_that_twilio_never_issues():
    recorder = RecordingBackend()
    first, second = recorder.send(MESSAGE), recorder.send(MESSAGE)
    for result in (first, second):
        assert result.status == "sent"
        assert result.provider_sid.startswith(RECORDED_SID_PREFIX) and len(result.provider_sid) == 34
        # Twilio sids are SM + 32 hex digits; "recorded" is not hex, so no real sid looks like this.
        assert not re.fullmatch(r"SM[0-9a-f]{32}", result.provider_sid)
    assert first.provider_sid != second.provider_sid
    assert recorder.recorded == [MESSAGE, MESSAGE]


def test_the_recording_backend_keeps_a_bounded_history():
    recorder = RecordingBackend(keep=3)
    for _ in range(5):
        recorder.send(MESSAGE)
    assert len(recorder.recorded) == 3


def test_the_recording_backend_refuses_what_twilio_would_refuse_before_sending():
    with pytest.raises(ValueError):
        RecordingBackend().send(OutboundMessage(to="12", rendered=MESSAGE.rendered))


def test_status_callback_url_is_the_public_base_plus_the_webhook_path():
    assert STATUS_CALLBACK_PATH == "/v1/webhooks/twilio/status"
    assert status_callback_url("https://api.example.cl") == "https://api.example.cl/v1/webhooks/twilio/status"
    assert status_callback_url("https://api.example.cl/") == "https://api.example.cl/v1/webhooks/twilio/status"


@pytest.mark.parametrize(
    ("failure", "retryable", "rate_limited"),
    [
        (SendFailure(http_status=429, error_code=20429), True, False),
        (SendFailure(http_status=400, error_code=63018), True, True),
        (SendFailure(http_status=400, error_code=21211), False, False),
        (SendFailure(timed_out=True), True, False),
    ],
)
def test_a_provider_error_answers_from_the_delivery_policy(failure, retryable, rate_limited):
    error = ProviderError(failure, maybe_sent=False)
    assert (error.status, error.code, error.timed_out) == (failure.http_status, failure.error_code, failure.timed_out)
    assert (error.retryable, error.rate_limited) == (retryable, rate_limited)
    assert error.classification in set(FailureClass)


def test_a_provider_errors_text_names_status_and_code_only():
    error = ProviderError(SendFailure(http_status=400, error_code=21211), maybe_sent=False)
    assert str(error) == "Twilio refused the message: HTTP 400, code 21211 (permanent)"
    timed_out = ProviderError(SendFailure(timed_out=True), maybe_sent=True)
    assert str(timed_out) == "Twilio did not answer in time (retryable; the message may have been accepted)"


@pytest.mark.parametrize("maybe_sent", [True, False])
def test_a_provider_error_survives_pickling_as_a_worker_would_ship_it(maybe_sent):
    error = ProviderError(SendFailure(timed_out=True, with_template=True), maybe_sent=maybe_sent)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert (copy.failure, copy.maybe_sent, str(copy)) == (error.failure, maybe_sent, str(error))


def test_send_result_carries_sid_and_status():
    assert SendResult(provider_sid="SM1", status="queued") == SendResult("SM1", "queued")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"whatsapp_from": "+14155238886"}, "whatsapp:+"),
        ({"account_sid": ""}, "account"),
        ({"auth_token": ""}, "auth token"),
        ({"status_callback_url": ""}, "status callback"),
        ({"content_sids": {"booking_reminder": "HX" + "1" * 32}}, "booking_reminder"),
        ({"content_sids": {"booking_confirmed": ""}}, "booking_confirmed"),
        ({"timeout_seconds": 0}, "timeout"),
    ],
)
def test_twilio_backend_refuses_unusable_configuration(change, message):
    with pytest.raises(ValueError, match=message):
        TwilioBackend(**{**TWILIO, **change})


def test_twilio_backend_repr_hides_the_auth_token():
    assert "t" * 32 not in repr(TwilioBackend(**TWILIO))


@pytest.mark.parametrize(
    ("base", "url", "rewritten"),
    [
        ("https://api.twilio.com", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", None),
        ("http://127.0.0.1:8089", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
         "http://127.0.0.1:8089/2010-04-01/Accounts/AC1/Messages.json"),
        ("http://127.0.0.1:8089/twilio/", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
         "http://127.0.0.1:8089/twilio/2010-04-01/Accounts/AC1/Messages.json"),
    ],
)  # fmt: skip
def test_the_http_client_moves_the_api_twilio_com_prefix_to_the_configured_base(base, url, rewritten):
    assert BaseUrlHttpClient(base, timeout=5.0).rewrite(url) == (rewritten or url)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.twilio.com.evil.example/2010-04-01/x",
        "https://content.twilio.com/v1/Content",
        "http://api.twilio.com/2010-04-01/x",
    ],
)
def test_the_http_client_refuses_urls_it_was_not_built_to_move(url):
    with pytest.raises(TwilioException):
        BaseUrlHttpClient("http://127.0.0.1:8089", timeout=5.0).rewrite(url)


def _settings(**env: str) -> Settings:
    base = {
        "APP_ENV": "development",
        "SECRET_KEY": "dev-" + "k" * 40,
        "ENCRYPTION_KEYS": "dev1:" + "A" * 43 + "=",
        "BLIND_INDEX_KEY": "dev:" + "B" * 43 + "=",
    }
    return Settings.from_env({**base, **env})


def test_without_an_account_sid_the_backend_records():
    assert isinstance(backend_from_settings(_settings()), RecordingBackend)


@pytest.mark.parametrize("absent", ["TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM", "PUBLIC_BASE_URL"])
def test_an_account_sid_without_the_rest_refuses_to_start_with_one_clear_line(absent):
    env = {
        "TWILIO_ACCOUNT_SID": TWILIO["account_sid"],
        "TWILIO_AUTH_TOKEN": TWILIO["auth_token"],
        "TWILIO_WHATSAPP_FROM": TWILIO["whatsapp_from"],
        "PUBLIC_BASE_URL": "https://api.example.cl",
    }
    del env[absent]
    with pytest.raises(ConfigurationError) as caught:
        backend_from_settings(_settings(**env))
    # The settings refuse it already, before any backend is built.
    assert caught.value.code == f"Estacionate refuses to start: TWILIO_ACCOUNT_SID is set, so {absent} must be set too"


def test_an_unknown_template_in_content_sids_refuses_to_start():
    env = {
        "TWILIO_ACCOUNT_SID": TWILIO["account_sid"],
        "TWILIO_AUTH_TOKEN": TWILIO["auth_token"],
        "TWILIO_WHATSAPP_FROM": TWILIO["whatsapp_from"],
        "PUBLIC_BASE_URL": "https://api.example.cl",
        "TWILIO_CONTENT_SIDS": '{"booking_reminder": "HX1"}',
    }
    with pytest.raises(ConfigurationError, match="booking_reminder"):
        backend_from_settings(_settings(**env))
