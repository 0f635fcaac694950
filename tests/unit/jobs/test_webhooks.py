"""Specification of webhook secrets and Standard Webhooks signatures (no delivery, no I/O)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.jobs.webhooks import message_id, new_secret, sign

BODY = json.dumps({"job_id": "0f9a", "status": "succeeded", "result": {"ok": True}}, separators=(",", ":"))


def test_new_secret_has_the_whsec_prefix():
    assert new_secret().startswith("whsec_")


def test_new_secret_decodes_to_24_random_bytes():
    assert len(base64.b64decode(new_secret().removeprefix("whsec_"), validate=True)) == 24


def test_new_secrets_are_unique():
    assert len({new_secret() for _ in range(100)}) == 100


def test_message_id_names_the_delivery():
    delivery = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert message_id(delivery) == "msg_12345678123456781234567812345678"


def test_signed_headers_verify_with_standardwebhooks():
    secret = new_secret()
    headers = sign(secret, "msg_1", datetime.now(UTC), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_signed_headers_carry_id_timestamp_and_v1_signature():
    now = datetime.now(UTC)
    headers = sign(new_secret(), "msg_abc", now, BODY)
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"


def test_modified_body_fails_verification():
    secret = new_secret()
    headers = sign(secret, "msg_1", datetime.now(UTC), BODY)
    tampered = BODY.replace("succeeded", "failed")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


def test_another_secret_fails_verification():
    headers = sign(new_secret(), "msg_1", datetime.now(UTC), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_replayed_message_id_with_another_id_fails_verification():
    secret = new_secret()
    headers = sign(secret, "msg_1", datetime.now(UTC), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})


def test_signature_verifies_for_an_aware_timestamp_in_any_time_zone():
    # The same instant expressed in Chile's winter offset: the header and the signature must agree.
    secret = new_secret()
    santiago = datetime.now(UTC).astimezone(timezone(timedelta(hours=-4)))
    headers = sign(secret, "msg_1", santiago, BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
