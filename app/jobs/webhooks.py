"""Signed job callbacks (Standard Webhooks, via the ``standardwebhooks`` library).

One attempt (``deliver``), in order:

1. **Claim** the row with one compare-and-swap: a pending, due row with attempts left gets
   ``attempts + 1`` and its next attempt pushed past the deadline (so the relay leaves it alone
   while we work); a pending, due row that has used all ``MAX_ATTEMPTS`` is marked ``failed``
   by that same statement and never sent again. Nothing else can claim it meanwhile.
2. **Prepare** with the claim committed: the job document, the user's secret (created here if
   missing, by one conditional UPDATE, so concurrent first deliveries all sign with the same
   secret). Nothing is held open across the network call.
3. **Send** through ``app.security.outbound.post``: the URL is vetted again (DNS may have
   changed; https only in production) and the connection pinned to the vetted address, all
   within ``WEBHOOK_DEADLINE_SECONDS`` of wall clock, however slowly the receiver answers.
4. **Record** the outcome: 2xx delivered, 410 gone, a refused destination failed, anything else
   (non-2xx, timeout, connection error, and ANY exception raised after the claim, a soft time
   limit included) is a failed attempt retried after ``RETRY_SCHEDULE`` x ``webhook_retry_scale``
   (about 26 hours in all) until the cap. Short delays ride on a Celery countdown, long ones stay
   in the row for the relay, since a countdown longer than the broker's visibility timeout re-runs.

If even recording fails (the database went away), the claim's hold expires, the relay publishes
the row again and the next claim counts the lost attempt: the cap holds whatever happens.

The task is its own edge: claim, prepare and record are three units of work
(``app/unit_of_work.py``), since nothing may be held open across the network call.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select, update
from standardwebhooks.webhooks import Webhook

from app.extensions import db
from app.jobs.broker import publish
from app.jobs.documents import job_document
from app.models import Job, User, WebhookDelivery
from app.models.audit import Actor, record
from app.runtime import current_settings
from app.security import outbound
from app.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

#: Seconds before attempt n+1 (scaled by settings); the sum is about 25.7 hours.
RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 21600, 21600, 21600)
#: The first attempt plus one per retry delay.
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
#: Delays up to this long are Celery countdowns; longer ones wait in the row for the relay.
MAX_COUNTDOWN_SECONDS = 300
#: How long past its deadline a claimed attempt keeps the row from being claimed again.
CLAIM_GRACE_SECONDS = 30


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


def ensure_secret(user_id: uuid.UUID) -> tuple[str, bool]:
    """The user's signing secret and whether this call created it, in the current unit of work.

    Creation is one ``UPDATE ... WHERE webhook_secret IS NULL``: of two concurrent callers the
    second waits on the first's row lock, then finds the column set and updates nothing, and
    both re-read the one secret that won.
    """
    secret_of = select(User.webhook_secret).where(User.id == user_id)
    existing = db.session.execute(secret_of).scalar_one()
    if existing:
        return existing, False
    created = db.session.execute(
        update(User)
        .where(User.id == user_id, User.webhook_secret.is_(None))
        .values({User.webhook_secret: new_secret(), User.updated_at: func.now()})
        .execution_options(synchronize_session=False)
    ).rowcount
    return db.session.execute(secret_of).scalar_one(), created == 1


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    job_id: uuid.UUID
    user_id: uuid.UUID
    attempts: int  # including this one


def _claim(delivery_id: uuid.UUID) -> Claim | str | None:
    """Claim the row for one attempt (committed), or fail it at the cap (``"failed"``); None if not due."""
    with unit_of_work():
        return _claim_row(delivery_id)


def _claim_row(delivery_id: uuid.UUID) -> Claim | str | None:
    settings = current_settings()
    hold = timedelta(seconds=settings.webhook_deadline_seconds + CLAIM_GRACE_SECONDS)
    has_attempts_left = WebhookDelivery.attempts < MAX_ATTEMPTS
    row = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= func.now(),
        )
        .values(
            attempts=case((has_attempts_left, WebhookDelivery.attempts + 1), else_=WebhookDelivery.attempts),
            status=case((has_attempts_left, "pending"), else_="failed"),
            last_error=case((has_attempts_left, WebhookDelivery.last_error), else_="attempts exhausted"),
            next_attempt_at=case((has_attempts_left, func.now() + hold), else_=WebhookDelivery.next_attempt_at),
            updated_at=func.now(),
        )
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.job_id,
            WebhookDelivery.user_id,
            WebhookDelivery.attempts,
            WebhookDelivery.status,
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    if row.status == "failed":
        _log(row.id, row.attempts, "failed", None, "attempts exhausted")
        return "failed"
    return Claim(row.id, row.job_id, row.user_id, row.attempts)


def deliver(delivery_id: str) -> str:
    """Make one attempt; return the outcome (``delivered``, ``gone``, ``retry``, ``failed``, ``skipped``)."""
    claim = _claim(uuid.UUID(delivery_id))
    if claim is None:
        return "skipped"
    if isinstance(claim, str):
        return claim
    try:
        return _attempt(claim)
    except Exception as exc:  # a crash (soft time limit included) is a failed attempt, never a loop
        log.warning(
            "webhook attempt crashed",
            extra={"delivery_id": str(claim.id), "attempt": claim.attempts, "error": type(exc).__name__},
        )
        return _schedule_retry(claim, None, f"internal error ({type(exc).__name__})")


def _prepare(claim: Claim) -> tuple[str, str, str] | None:
    """The URL, the signing secret and the body to send (committed); None if the job or user is gone."""
    with unit_of_work():
        job = db.session.get(Job, claim.job_id)
        if job is None or db.session.execute(select(User.id).where(User.id == claim.user_id)).first() is None:
            return None
        url = db.session.execute(select(WebhookDelivery.url).where(WebhookDelivery.id == claim.id)).scalar_one()
        secret, created = ensure_secret(claim.user_id)
        if created:
            record("webhook_secret.created", Actor.job(claim.user_id), entity_type="user", entity_id=claim.user_id)
        return url, secret, json.dumps(job_document(job), separators=(",", ":"))


def _attempt(claim: Claim) -> str:
    prepared = _prepare(claim)  # committed: nothing is held open across the network call
    if prepared is None:
        return _record(claim, "failed", error="job or user missing")
    url, secret, body = prepared
    outcome = post_signed(url, secret, message_id(claim.id), body)
    if outcome.status == "retry":
        return _schedule_retry(claim, outcome.code, outcome.error or "")
    return _record(claim, outcome.status, code=outcome.code, error=outcome.error)


@dataclass(frozen=True)
class Outcome:
    """One signed POST's outcome: ``delivered``, ``gone`` (410), ``failed`` (refused destination) or ``retry``."""

    status: str
    code: int | None = None
    error: str | None = None


def post_signed(url: str, secret: str, message_id: str, body: str) -> Outcome:
    """POST ``body`` to ``url`` signed per Standard Webhooks, through the outbound policy, within one deadline.

    Shared by job callbacks and operator webhooks (app/jobs/event_webhooks.py): the URL is vetted
    again (DNS may have changed), the connection pinned, redirects not followed. A name that does
    not resolve is retried (often temporary); a destination the policy refuses is not.
    """
    settings = current_settings()
    headers = sign(secret, message_id, datetime.now(UTC), body)
    try:
        answer = outbound.post(
            url,
            body.encode(),
            headers,
            deadline=settings.webhook_deadline_seconds,
            policy=outbound.Policy.for_settings(settings),
            ca_bundle=settings.outbound_ca_bundle or None,
        )
    except outbound.Unresolvable as exc:
        return Outcome("retry", None, str(exc))
    except outbound.DestinationRefused as exc:
        return Outcome("failed", None, f"destination refused: {exc}")
    except outbound.OutboundError as exc:
        return Outcome("retry", None, str(exc))
    if 200 <= answer.status < 300:
        return Outcome("delivered", answer.status)
    if answer.status == 410:
        return Outcome("gone", 410, "HTTP 410")
    return Outcome("retry", answer.status, f"HTTP {answer.status}")


def _schedule_retry(claim: Claim, code: int | None, error: str) -> str:
    if claim.attempts >= MAX_ATTEMPTS:
        return _record(claim, "failed", code=code, error=error)
    delay = RETRY_SCHEDULE[claim.attempts - 1] * current_settings().webhook_retry_scale * random.uniform(0.9, 1.1)
    _record(claim, "pending", code=code, error=error, retry_in=delay)
    if delay <= MAX_COUNTDOWN_SECONDS:
        publish("webhooks.deliver", [str(claim.id)], countdown=delay)
    return "retry"


def _record(
    claim: Claim,
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
    with unit_of_work():
        db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claim.id, WebhookDelivery.attempts == claim.attempts)
            .values(updated_at=func.now(), **values)
            .execution_options(synchronize_session=False)
        )
    _log(claim.id, claim.attempts, status, code, error)
    return "retry" if status == "pending" else status


def _log(ident: uuid.UUID, attempts: int, status: str, code: int | None, error: str | None) -> None:
    log.info(
        "webhook attempt",
        extra={"delivery_id": str(ident), "outcome": status, "attempt": attempts, "http_status": code, "error": error},
    )
