"""The real ``twilio`` client, pointed at the fake Twilio through ``TWILIO_API_BASE``, over real HTTP.

Nothing of ours or of the library is patched: what these tests see is what the fake server
received on the wire and what the backend raised from the library's own exceptions.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import traceback
from datetime import UTC, datetime

import pytest

from app.domain.notifications import DELIVERY_POLICY, GiveUp, Retry, render
from app.notifications import (
    STATUS_CALLBACK_PATH,
    OutboundMessage,
    ProviderError,
    RecordingBackend,
    SendResult,
    TwilioBackend,
    backend_from_settings,
)
from config.settings import Settings
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, WHATSAPP_FROM

PHONE = "+56987654321"
CALLBACK = "https://api.estacionate.example" + STATUS_CALLBACK_PATH
CONFIRMED_SID = "HX" + "b" * 32
BOOKING = {
    "visitor_name": "Ana Pérez",
    "building": "Torre Los Leones",
    "spot": "V-12",
    "starts_at": datetime(2026, 4, 4, 23, 0, tzinfo=UTC),
    "ends_at": datetime(2026, 4, 5, 11, 0, tzinfo=UTC),
    "confirmation_code": "K7P2QX9M",
}


def confirmed(to: str = PHONE) -> OutboundMessage:
    return OutboundMessage(to=to, rendered=render("booking_confirmed", BOOKING, "America/Santiago"), reference="n-1")


def reset_code() -> OutboundMessage:
    return OutboundMessage(to=PHONE, rendered=render("password_reset_code", {"code": "042917", "valid_minutes": 10}))


def backend(fake, **overrides) -> TwilioBackend:
    options = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "whatsapp_from": fake.whatsapp_from,
        "status_callback_url": CALLBACK,
        "api_base": fake.api_base,
        **overrides,
    }
    return TwilioBackend(**options)


def raised(send) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        send()
    return caught.value


# --- what Twilio receives -------------------------------------------------------------------


def test_a_message_is_one_authenticated_post_with_to_from_callback_and_body(fake_twilio):
    result = backend(fake_twilio).send(confirmed())

    (received,) = fake_twilio.requests
    assert received.authorized and received.account_sid == ACCOUNT_SID
    assert received.form == {
        "To": "whatsapp:+56987654321",
        "From": WHATSAPP_FROM,
        "StatusCallback": CALLBACK,
        "Body": (
            "Estacionate: reserva confirmada para Ana Pérez en Torre Los Leones, estacionamiento V-12, "
            "desde el 04-04-2026 20:00 hasta el 05-04-2026 07:00. Código de confirmación: K7P2QX9M."
        ),
    }
    assert result == SendResult(provider_sid=received.sid, status="queued")
    assert result.provider_sid.startswith("SM")


def test_a_template_named_in_content_sids_goes_as_content_sid_with_numbered_variables(fake_twilio):
    twilio = backend(fake_twilio, content_sids={"booking_confirmed": CONFIRMED_SID})
    twilio.send(confirmed())

    (received,) = fake_twilio.messages
    assert "Body" not in received.form
    assert received.form["ContentSid"] == CONFIRMED_SID
    assert json.loads(received.form["ContentVariables"]) == {
        "1": "Ana Pérez",
        "2": "Torre Los Leones",
        "3": "V-12",
        "4": "04-04-2026 20:00",
        "5": "05-04-2026 07:00",
        "6": "K7P2QX9M",
    }
    assert (received.form["To"], received.form["From"], received.form["StatusCallback"]) == (
        "whatsapp:+56987654321",
        WHATSAPP_FROM,
        CALLBACK,
    )


def test_a_template_without_a_content_sid_still_goes_as_body(fake_twilio):
    backend(fake_twilio, content_sids={"booking_confirmed": CONFIRMED_SID}).send(reset_code())
    (received,) = fake_twilio.messages
    assert "ContentSid" not in received.form and "ContentVariables" not in received.form
    assert "042917" in received.form["Body"]


def test_a_nine_digit_chilean_mobile_is_sent_in_e164(fake_twilio):
    backend(fake_twilio).send(confirmed(to="987654321"))
    assert fake_twilio.messages[0].form["To"] == "whatsapp:+56987654321"


def test_a_destination_that_is_not_a_phone_number_is_refused_before_any_request(fake_twilio):
    with pytest.raises(ValueError):
        backend(fake_twilio).send(confirmed(to="not-a-phone"))
    assert fake_twilio.requests == []


def test_the_process_environment_cannot_send_the_client_elsewhere(fake_twilio, monkeypatch):
    # The library reads TWILIO_EDGE / TWILIO_REGION from os.environ; settings are our only configuration.
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    backend(fake_twilio).send(confirmed())
    assert len(fake_twilio.messages) == 1


def test_one_backend_sends_many_messages_over_its_pooled_session(fake_twilio):
    twilio = backend(fake_twilio)
    sids = {twilio.send(confirmed()).provider_sid for _ in range(5)}
    assert len(sids) == 5 and len(fake_twilio.messages) == 5


# --- how Twilio's refusals come back ----------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20500)])
def test_429_and_5xx_raise_retryable_errors(fake_twilio, status, code):
    fake_twilio.fail_next(1, status)
    error = raised(lambda: backend(fake_twilio).send(confirmed()))
    assert (error.status, error.code, error.retryable, error.timed_out) == (status, code, True, False)
    assert error.maybe_sent is False
    assert isinstance(DELIVERY_POLICY.decide(error.failure, 1, jitter=0.0), Retry)
    assert len(fake_twilio.requests) == 1, "the library must not retry on its own"


def test_a_gateway_page_that_is_not_json_is_retryable_with_no_twilio_code(fake_twilio):
    fake_twilio.fail_next(1, 502, json_body=False)
    error = raised(lambda: backend(fake_twilio).send(confirmed()))
    # The library reports the HTTP status as the code when the body has none; that is not a Twilio code.
    assert (error.status, error.code, error.retryable) == (502, None, True)


def test_21211_is_permanent_after_exactly_one_request(fake_twilio):
    fake_twilio.fail_next(1, 400, code=21211)
    error = raised(lambda: backend(fake_twilio).send(confirmed()))
    assert (error.status, error.code, error.retryable) == (400, 21211, False)
    assert DELIVERY_POLICY.decide(error.failure, 1, jitter=0.5) == GiveUp(
        error_code=21211, http_status=400, opted_out=False, exhausted=False
    )
    assert len(fake_twilio.requests) == 1


@pytest.mark.parametrize("code", [21610, 63014])
def test_opt_out_answers_are_permanent_and_say_so(fake_twilio, code):
    fake_twilio.fail_next(1, 400, code=code)
    error = raised(lambda: backend(fake_twilio).send(confirmed()))
    decision = DELIVERY_POLICY.decide(error.failure, 1, jitter=0.5)
    assert isinstance(decision, GiveUp) and decision.opted_out and decision.error_code == code


def test_63018_is_a_rate_limit_that_waits_longer(fake_twilio):
    fake_twilio.fail_next(1, 429, code=63018)
    error = raised(lambda: backend(fake_twilio).send(confirmed()))
    assert (error.code, error.retryable, error.rate_limited) == (63018, True, True)


def test_the_failure_knows_whether_a_template_was_used_which_decides_63016(fake_twilio):
    fake_twilio.fail_next(2, 503, code=63016)
    as_body = raised(lambda: backend(fake_twilio).send(confirmed()))
    as_template = raised(
        lambda: backend(fake_twilio, content_sids={"booking_confirmed": CONFIRMED_SID}).send(confirmed())
    )
    assert (as_body.failure.with_template, as_body.retryable) == (False, False)
    assert (as_template.failure.with_template, as_template.retryable) == (True, True)


def test_wrong_credentials_are_a_permanent_failure(fake_twilio):
    error = raised(lambda: backend(fake_twilio, auth_token="not-the-token").send(confirmed()))
    assert (error.status, error.code, error.retryable) == (401, 20003, False)
    assert fake_twilio.requests[0].authorized is False


def test_a_slow_answer_times_out_as_retryable_and_possibly_sent(fake_twilio):
    hold = fake_twilio.hold_next()
    started = time.monotonic()
    error = raised(lambda: backend(fake_twilio, timeout_seconds=0.5).send(confirmed()))
    elapsed = time.monotonic() - started
    hold.release()
    assert hold.arrived.is_set()
    assert (error.status, error.code, error.timed_out, error.retryable) == (None, None, True, True)
    # The request reached Twilio: whether it was accepted is unknown (DESIGN.md's duplicate window).
    assert error.maybe_sent is True
    assert 0.4 < elapsed < 5.0


def test_an_unreachable_api_is_retryable_and_certainly_not_sent():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    twilio = TwilioBackend(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        whatsapp_from=WHATSAPP_FROM,
        status_callback_url=CALLBACK,
        api_base=f"http://127.0.0.1:{port}",
    )
    error = raised(lambda: twilio.send(confirmed()))
    assert (error.status, error.code, error.retryable, error.maybe_sent) == (None, None, True, False)


def test_concurrent_sends_from_threads_each_get_their_own_sid(fake_twilio):
    twilio = backend(fake_twilio)
    results: list[SendResult] = []
    threads = [threading.Thread(target=lambda: results.append(twilio.send(confirmed()))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len({r.provider_sid for r in results}) == 6
    assert {r.provider_sid for r in results} == {m.sid for m in fake_twilio.messages}


# --- privacy --------------------------------------------------------------------------------


def test_no_log_record_error_text_or_traceback_holds_the_phone_body_or_token(fake_twilio, caplog):
    caplog.set_level(logging.DEBUG)
    twilio = backend(fake_twilio)
    twilio.send(confirmed())
    fake_twilio.fail_next(1, 400, code=21211)  # Twilio's message for 21211 quotes the number
    error = raised(lambda: twilio.send(confirmed()))
    hold = fake_twilio.hold_next()
    timeout = raised(lambda: backend(fake_twilio, timeout_seconds=0.3).send(confirmed()))
    hold.release()

    rendered_records = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if not r.name.startswith("werkzeug")
    )
    assert "twilio message created" in rendered_records, "the scan must cover the backend's own lines"
    texts = {
        "log records": rendered_records,
        "error": f"{error} {error!r}",
        "traceback": "".join(traceback.format_exception(error)),
        "timeout traceback": "".join(traceback.format_exception(timeout)),
    }
    secrets = ("987654321", "Ana Pérez", "K7P2QX9M", "Torre Los Leones", AUTH_TOKEN)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into the {where}"
    assert "21211" in texts["error"]


def test_the_message_repr_shows_neither_destination_nor_content():
    text = repr(confirmed())
    assert PHONE not in text and "Ana Pérez" not in text and "K7P2QX9M" not in text
    assert "booking_confirmed" in text


# --- choosing the backend from settings ---------------------------------------------------------


def settings_with(**env: str) -> Settings:
    base = {
        "APP_ENV": "test",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/unused",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SECRET_KEY": "dev-" + "k" * 40,
        "ENCRYPTION_KEYS": "dev1:" + "A" * 43 + "=",
        "BLIND_INDEX_KEY": "dev:" + "B" * 43 + "=",
        "PUBLIC_BASE_URL": "https://api.estacionate.example",
    }
    return Settings.from_env({**base, **env})


def test_without_an_account_sid_messages_are_recorded_and_nothing_reaches_twilio(fake_twilio):
    chosen = backend_from_settings(settings_with(TWILIO_API_BASE=fake_twilio.api_base))
    assert isinstance(chosen, RecordingBackend)
    result = chosen.send(confirmed())
    assert result.provider_sid.startswith("SMrecorded")
    assert fake_twilio.requests == []
    assert [m.rendered.template for m in chosen.recorded] == ["booking_confirmed"]


def test_with_an_account_sid_messages_go_to_twilio_api_base_with_the_public_callback(fake_twilio):
    chosen = backend_from_settings(
        settings_with(**fake_twilio.env(), TWILIO_CONTENT_SIDS=json.dumps({"booking_confirmed": CONFIRMED_SID}))
    )
    assert isinstance(chosen, TwilioBackend)
    chosen.send(confirmed())
    (received,) = fake_twilio.messages
    assert received.form["StatusCallback"] == "https://api.estacionate.example/v1/webhooks/twilio/status"
    assert received.form["ContentSid"] == CONFIRMED_SID
