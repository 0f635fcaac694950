"""The fake Twilio behaves like Twilio on the wire, so tests built on it mean something.

Exercised here with plain HTTP (``requests``) and the real ``twilio`` library's validator; the
backend's own tests (test_twilio_backend.py) then drive it with the real Twilio client.
"""

from __future__ import annotations

import threading

import requests
from twilio.request_validator import RequestValidator

from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, WHATSAPP_FROM, sign_status_callback

FORM = {"To": "whatsapp:+56912345678", "From": WHATSAPP_FROM, "Body": "hola"}


def post(fake, form=FORM, auth=(ACCOUNT_SID, AUTH_TOKEN), account=ACCOUNT_SID, timeout=10.0):
    url = f"{fake.api_base}/2010-04-01/Accounts/{account}/Messages.json"
    return requests.post(url, data=form, auth=auth, timeout=timeout)


def test_a_message_is_answered_201_with_an_sm_sid_and_twilios_fields(fake_twilio):
    response = post(fake_twilio)
    assert response.status_code == 201
    document = response.json()
    assert document["sid"].startswith("SM") and len(document["sid"]) == 34
    assert document["status"] == "queued"
    assert document["to"] == "whatsapp:+56912345678"
    assert document["from"] == WHATSAPP_FROM
    assert document["account_sid"] == ACCOUNT_SID
    assert document["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{document['sid']}.json"
    (received,) = fake_twilio.messages
    assert received.form == FORM
    assert received.authorized and received.sid == document["sid"]


def test_wrong_credentials_get_twilios_401_and_are_recorded_as_unauthorized(fake_twilio):
    for auth in [(ACCOUNT_SID, "wrong"), ("AC" + "0" * 32, AUTH_TOKEN), None]:
        response = post(fake_twilio, auth=auth)
        assert response.status_code == 401
        assert response.json()["code"] == 20003
    assert [r.authorized for r in fake_twilio.requests] == [False, False, False]
    assert fake_twilio.messages == []


def test_another_accounts_path_is_unauthorized_even_with_this_accounts_credentials(fake_twilio):
    assert post(fake_twilio, account="AC" + "1" * 32).status_code == 401


def test_requests_missing_what_twilio_requires_get_its_400s(fake_twilio):
    cases = [
        ({"From": WHATSAPP_FROM, "Body": "x"}, 21604),
        ({"To": "whatsapp:+56912345678", "Body": "x"}, 21603),
        ({"To": "whatsapp:+56912345678", "From": WHATSAPP_FROM}, 21602),
        ({**FORM, "ContentSid": "HX" + "a" * 32, "ContentVariables": "{not json"}, 21656),
        ({**FORM, "ContentSid": "HX" + "a" * 32, "ContentVariables": '{"1": 7}'}, 21656),
    ]
    for form, code in cases:
        response = post(fake_twilio, form=form)
        assert (response.status_code, response.json()["code"]) == (400, code)


def test_scripted_failures_answer_the_next_n_requests_then_201(fake_twilio):
    fake_twilio.fail_next(2, 429)
    fake_twilio.fail_next(1, 400, code=21211)
    answers = [post(fake_twilio) for _ in range(4)]
    assert [r.status_code for r in answers] == [429, 429, 400, 201]
    error = answers[2].json()
    assert error == {
        "code": 21211,
        "message": "The 'To' number whatsapp:+56912345678 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    assert answers[0].json()["code"] == 20429
    assert [r.answered_status for r in fake_twilio.requests] == [429, 429, 400, 201]


def test_a_scripted_failure_can_be_a_page_that_is_not_json(fake_twilio):
    fake_twilio.fail_next(1, 502, json_body=False)
    response = post(fake_twilio)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")


def test_a_held_request_is_recorded_on_arrival_and_answered_on_release(fake_twilio):
    hold = fake_twilio.hold_next()
    answers = []
    sender = threading.Thread(target=lambda: answers.append(post(fake_twilio)))
    sender.start()
    arrived = hold.wait_arrived()
    assert arrived.form == FORM
    assert len(fake_twilio.requests) == 1 and arrived.answered_status is None
    assert post(fake_twilio).status_code == 201, "a held request must not block the others"
    assert answers == []
    hold.release()
    sender.join(10)
    assert [r.status_code for r in answers] == [201]
    assert len(fake_twilio.messages) == 2


def test_a_status_callback_is_signed_the_way_twilios_validator_checks(fake_twilio, httpserver):
    sid = post(fake_twilio).json()["sid"]
    httpserver.expect_request("/v1/webhooks/twilio/status", method="POST").respond_with_data("", status=204)
    public = "https://api.example.cl/v1/webhooks/twilio/status"

    response = fake_twilio.status_callback(
        httpserver.url_for("/v1/webhooks/twilio/status"), sid, "delivered", signed_url=public
    )

    assert response.status_code == 204
    request, _ = httpserver.log[-1]
    form = dict(request.form)
    assert form["MessageSid"] == sid and form["MessageStatus"] == "delivered"
    assert form["AccountSid"] == ACCOUNT_SID
    assert form["To"] == "whatsapp:+56912345678" and form["From"] == WHATSAPP_FROM
    signature = request.headers["X-Twilio-Signature"]
    assert RequestValidator(AUTH_TOKEN).validate(public, form, signature)
    assert not RequestValidator("another-token").validate(public, form, signature)
    assert not RequestValidator(AUTH_TOKEN).validate(httpserver.url_for("/v1/webhooks/twilio/status"), form, signature)


def test_status_callbacks_can_carry_an_error_code_a_forged_signature_or_none(fake_twilio, httpserver):
    httpserver.expect_request("/cb", method="POST").respond_with_data("", status=204)
    url = httpserver.url_for("/cb")
    fake_twilio.status_callback(url, "SM" + "0" * 32, "undelivered", error_code=63016)
    fake_twilio.status_callback(url, "SM" + "0" * 32, "read", signature="bm90LWEtc2lnbmF0dXJl")
    fake_twilio.status_callback(url, "SM" + "0" * 32, "read", sign=False)
    (first, _), (forged, _), (unsigned, _) = httpserver.log[-3:]
    assert first.form["ErrorCode"] == "63016" and first.form["MessageStatus"] == "undelivered"
    assert "To" not in first.form, "an unknown sid has no recorded destination"
    assert forged.headers["X-Twilio-Signature"] == "bm90LWEtc2lnbmF0dXJl"
    assert "X-Twilio-Signature" not in unsigned.headers


def test_sign_status_callback_matches_the_libraries_computation():
    params = {"MessageSid": "SM1", "MessageStatus": "sent"}
    url = "https://api.example.cl/v1/webhooks/twilio/status"
    assert sign_status_callback(AUTH_TOKEN, url, params) == RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    assert RequestValidator(AUTH_TOKEN).validate(url, params, sign_status_callback(AUTH_TOKEN, url, params))
