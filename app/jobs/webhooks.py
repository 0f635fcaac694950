"""Signed job callbacks (Standard Webhooks, via the ``standardwebhooks`` library).

The delivery row is claimed with a compare-and-swap that pushes its next attempt past the
request timeout, the POST happens with no transaction open, and the outcome is recorded after.
Retries back off over more than a day (``RETRY_SCHEDULE`` x ``webhook_retry_scale``); a 410
from the receiver stops them. Short delays ride on a Celery countdown, long ones stay in the
row for the relay, since a countdown longer than the broker's visibility timeout re-runs.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from app.extensions import db
from app.jobs.broker import publish
from app.jobs.documents import job_document
from app.models import Job, User, WebhookDelivery
from app.runtime import current_settings
from app.security.outbound import DestinationRefused, check_callback_url

log = logging.getLogger(__name__)

#: Seconds before attempt n+1 (scaled by settings); the sum is about 25.7 hours.
RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 21600, 21600, 21600)
#: Delays up to this long are Celery countdowns; longer ones wait in the row for the relay.
MAX_COUNTDOWN_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    # standardwebhooks stamps the datetime as UTC without converting it: hand it UTC.
    signature = Webhook(secret).sign(message_id, timestamp.astimezone(UTC), body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "Estacionate-Webhooks/1",
    }


def message_id(delivery_id: uuid.UUID) -> str:
    return f"msg_{delivery_id.hex}"


def _claim(delivery_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, str, int] | None:
    settings = current_settings()
    hold = timedelta(seconds=settings.webhook_timeout_seconds + 30)
    row = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= func.now(),
        )
        .values(attempts=WebhookDelivery.attempts + 1, next_attempt_at=func.now() + hold, updated_at=func.now())
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.job_id,
            WebhookDelivery.user_id,
            WebhookDelivery.url,
            WebhookDelivery.attempts,
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        db.session.rollback()
        return None
    db.session.commit()
    return row.id, row.job_id, row.user_id, row.url, row.attempts


def deliver(delivery_id: str) -> str:
    """Make one attempt; return the outcome (``delivered``, ``gone``, ``retry``, ``failed``, ``skipped``)."""
    claimed = _claim(uuid.UUID(delivery_id))
    if claimed is None:
        return "skipped"
    settings = current_settings()
    ident, job_id, user_id, url, attempts = claimed
    job = db.session.get(Job, job_id)
    user = db.session.get(User, user_id)
    if job is None or user is None:
        return _record(ident, attempts, "failed", error="job or user missing")
    if not user.webhook_secret:
        user.webhook_secret = new_secret()
    secret = user.webhook_secret
    body = json.dumps(job_document(job), separators=(",", ":"))
    db.session.commit()  # nothing is held open across the network call

    try:
        check_callback_url(url, allow_loopback=settings.allow_loopback_callbacks)
    except DestinationRefused as exc:
        return _record(ident, attempts, "failed", error=f"destination refused: {exc}")
    headers = sign(secret, message_id(ident), datetime.now(UTC), body)
    try:
        response = requests.post(
            url, data=body.encode(), headers=headers, timeout=settings.webhook_timeout_seconds, allow_redirects=False
        )
        code: int | None = response.status_code
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    except requests.RequestException as exc:
        code, error = None, type(exc).__name__
    if code is not None and 200 <= code < 300:
        return _record(ident, attempts, "delivered", code=code)
    if code == 410:
        return _record(ident, attempts, "gone", code=code, error=error)
    return _schedule_retry(ident, attempts, code, error)


def _schedule_retry(ident: uuid.UUID, attempts: int, code: int | None, error: str | None) -> str:
    if attempts > len(RETRY_SCHEDULE):
        return _record(ident, attempts, "failed", code=code, error=error)
    delay = RETRY_SCHEDULE[attempts - 1] * current_settings().webhook_retry_scale * random.uniform(0.9, 1.1)
    _record(ident, attempts, "pending", code=code, error=error, retry_in=delay)
    if delay <= MAX_COUNTDOWN_SECONDS:
        publish("webhooks.deliver", [str(ident)], countdown=delay)
    return "retry"


def _record(
    ident: uuid.UUID,
    attempts: int,
    status: str,
    *,
    code: int | None = None,
    error: str | None = None,
    retry_in: float | None = None,
) -> str:
    values: dict[str, object] = {"status": status, "last_status_code": code, "last_error": error}
    if status == "delivered":
        values["delivered_at"] = func.now()
    if retry_in is not None:
        values["next_attempt_at"] = func.now() + timedelta(seconds=retry_in)
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == ident, WebhookDelivery.attempts == attempts)
        .values(updated_at=func.now(), **values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    log.info(
        "webhook attempt",
        extra={"delivery_id": str(ident), "outcome": status, "attempt": attempts, "http_status": code},
    )
    return "retry" if status == "pending" else status


def deliveries_for_job(job_id: uuid.UUID) -> list[WebhookDelivery]:
    return list(db.session.execute(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).scalars())
