"""Operator webhooks: each event of an organization POSTed to its subscribed endpoints, signed.

Fan-out (``fan_out``) runs inside the ``operator_webhooks`` durable subscriber
(app/subscribers/operator_webhooks.py), so the delivery rows commit with its receipt: one
``INSERT ... SELECT`` writes a pending row per enabled endpoint of the event's organization whose
filter matches (``ON CONFLICT DO NOTHING`` on ``(endpoint, event)``), and their
``webhooks.deliver_event`` messages (ids only) go out after the commit. Another organization's
endpoints are never selected: the organization is the event's own.

One attempt (``deliver``) follows the job callbacks (app/jobs/webhooks.py), with the same signed
POST (``post_signed``: Standard Webhooks, the outbound SSRF policy again at delivery, one deadline):

1. **Claim** with one compare-and-swap: a due, pending row of an *enabled* endpoint with attempts
   left gets ``attempts + 1`` and is held past the deadline; a due row at the cap, or of a
   disabled endpoint, is failed by the same statement and never sent.
2. **Prepare** (committed): the event document, the endpoint's URL and secret.
3. **Send**: ``webhook-id`` is the event id, the same on every retry and for every endpoint, so a
   receiver de-duplicates; the body is the event document, ids and facts only.
4. **Record**: 2xx ``delivered`` (and the endpoint is healthy again: ``failing_since`` cleared);
   410 ``gone``: no more retries for that event (API.md), the endpoint stays enabled; a refused
   destination ``failed``; anything else a failed attempt, retried after ``RETRY_SCHEDULE`` (more
   than 24 h in all, even with jitter) until ``MAX_ATTEMPTS``. Every failed attempt (a refused
   destination and a crash included) marks the endpoint failing since then, and an endpoint
   whose attempts have all failed for ``DISABLE_AFTER`` becomes ``disabled``: its pending rows are
   failed at once and it is offered no new event.

Retries live in the rows (``next_attempt_at``): short delays ride on a Celery countdown, long
ones wait for the relay (``app/jobs/relay.py``), never on an ETA longer than the broker's
visibility timeout.

**The webhook clock.** Every duration here (the retry delays and the 24 h disable window) is
multiplied by ``webhook_retry_scale`` (1 in production). Tests shrink it, which runs a day of an
endpoint's life in seconds against the real database clock: the simulated clock of the 24 h
rule, with nothing patched.

Personal data: none. The body is the event document (app/domain/events.py allows ids, statuses,
times, amounts and spot numbers only), and a delivery row stores ids, counters and HTTP statuses;
nothing here needs a GDPR scrub.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.extensions import db
from app.jobs import webhooks
from app.jobs.broker import publish
from app.models import EndpointDelivery, Event, WebhookEndpoint
from app.observability import metrics
from app.runtime import current_settings
from app.unit_of_work import current_unit_of_work, unit_of_work

log = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver_event"
#: Seconds before attempt n+1 (x ``webhook_retry_scale``): about 31.7 h in all, so the last
#: attempt comes after the 24 h disable window even when jitter shortens every delay by 10 %.
RETRY_SCHEDULE = (*webhooks.RETRY_SCHEDULE, 21600)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
#: An endpoint whose every attempt failed for this long is disabled (x ``webhook_retry_scale``).
DISABLE_AFTER = timedelta(hours=24)

_FAN_OUT = text(
    """
    INSERT INTO webhook_endpoint_deliveries (id, endpoint_id, event_id, status, attempts, next_attempt_at)
    SELECT gen_random_uuid(), e.id, :event_id, 'pending', 0, now()
    FROM webhook_endpoints e
    WHERE e.organization_id = :organization_id
      AND e.status = 'enabled'
      AND e.event_types && ARRAY['*', :event_type]::text[]
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING id
    """
)

_CLAIM = text(
    """
    UPDATE webhook_endpoint_deliveries d
    SET attempts = CASE WHEN e.status = 'enabled' AND d.attempts < :cap THEN d.attempts + 1 ELSE d.attempts END,
        status = CASE WHEN e.status = 'enabled' AND d.attempts < :cap THEN 'pending' ELSE 'failed' END,
        last_error = CASE
            WHEN e.status <> 'enabled' THEN 'endpoint disabled'
            WHEN d.attempts >= :cap THEN 'attempts exhausted'
            ELSE d.last_error END,
        next_attempt_at = CASE WHEN e.status = 'enabled' AND d.attempts < :cap
            THEN now() + make_interval(secs => :hold) ELSE d.next_attempt_at END,
        updated_at = now()
    FROM webhook_endpoints e
    WHERE d.id = :id AND e.id = d.endpoint_id AND d.status = 'pending' AND d.next_attempt_at <= now()
    RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, d.status, d.last_error
    """
)

#: A failed attempt: the endpoint is failing since its first failure after the last success, and
#: disabled once that is ``window`` seconds ago (the database clock, as every row time here).
_FAILED = text(
    """
    UPDATE webhook_endpoints
    SET failing_since = coalesce(failing_since, now()),
        status = CASE WHEN coalesce(failing_since, now()) <= now() - make_interval(secs => :window)
            THEN 'disabled' ELSE status END,
        disabled_at = CASE WHEN status = 'enabled'
            AND coalesce(failing_since, now()) <= now() - make_interval(secs => :window)
            THEN now() ELSE disabled_at END,
        updated_at = now()
    WHERE id = :endpoint_id
    RETURNING status, disabled_at = now() AS just_disabled
    """
)


def fan_out(event: Event) -> list[uuid.UUID]:
    """Write the event's deliveries in the current unit of work (the subscriber's); publish them after it commits."""
    if event.organization_id is None:
        return []
    ids = list(
        db.session.execute(
            _FAN_OUT,
            {"event_id": event.id, "organization_id": event.organization_id, "event_type": event.type},
        ).scalars()
    )
    if ids:
        current_unit_of_work().after_commit(lambda: [publish(DELIVER_TASK, [str(i)]) for i in ids])
    return ids


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    attempts: int  # including this one


def scaled(seconds: float) -> float:
    """``seconds`` on the webhook clock (``webhook_retry_scale``: 1 in production)."""
    return seconds * current_settings().webhook_retry_scale


def _claim(delivery_id: uuid.UUID) -> Claim | str | None:
    settings = current_settings()
    hold = settings.webhook_deadline_seconds + webhooks.CLAIM_GRACE_SECONDS
    with unit_of_work():
        row = db.session.execute(_CLAIM, {"id": delivery_id, "cap": MAX_ATTEMPTS, "hold": hold}).one_or_none()
    if row is None:
        return None
    if row.status == "failed":
        _log(row.id, row.endpoint_id, row.attempts, "failed", None, row.last_error)
        metrics.ENDPOINT_ATTEMPTS.labels(outcome="failed").inc()
        return "failed"
    return Claim(row.id, row.endpoint_id, row.event_id, row.attempts)


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
            "operator webhook attempt crashed",
            extra={"delivery_id": str(claim.id), "attempt": claim.attempts, "error": type(exc).__name__},
        )
        return _record(claim, webhooks.Outcome("retry", None, f"internal error ({type(exc).__name__})"))


def _prepare(claim: Claim) -> tuple[str, str, str, datetime] | None:
    """URL, secret, body and the event's occurrence (committed); None if the endpoint or event is gone."""
    with unit_of_work():
        endpoint = db.session.get(WebhookEndpoint, claim.endpoint_id)
        event = db.session.get(Event, claim.event_id)
        if endpoint is None or event is None:
            return None
        body = json.dumps(event.document(), separators=(",", ":"))
        return endpoint.url, endpoint.secret, body, event.occurred_at


def _attempt(claim: Claim) -> str:
    prepared = _prepare(claim)  # committed: nothing is held open across the network call
    if prepared is None:
        return _record(claim, webhooks.Outcome("failed", None, "endpoint or event missing"), count_failure=False)
    url, secret, body, occurred_at = prepared
    outcome = webhooks.post_signed(url, secret, str(claim.event_id), body)
    result = _record(claim, outcome)
    if result == "delivered":
        metrics.ENDPOINT_DELIVERY_LAG.observe(max((datetime.now(UTC) - occurred_at).total_seconds(), 0.0))
    return result


def _record(claim: Claim, outcome: webhooks.Outcome, *, count_failure: bool = True) -> str:
    """Write the attempt's outcome, and the endpoint's health, in one unit of work."""
    status, retry_in = outcome.status, None
    if status == "retry":
        if claim.attempts >= MAX_ATTEMPTS:
            status = "failed"
        else:
            retry_in = scaled(RETRY_SCHEDULE[claim.attempts - 1]) * random.uniform(0.9, 1.1)
            status = "pending"
    values: dict[str, object] = {"status": status, "last_status_code": outcome.code, "last_error": outcome.error}
    if retry_in is not None:
        values["next_attempt_at"] = datetime.now(UTC) + timedelta(seconds=retry_in)
    disabled = False
    with unit_of_work():
        updated = db.session.execute(
            EndpointDelivery.__table__.update()
            .where(EndpointDelivery.id == claim.id, EndpointDelivery.attempts == claim.attempts)
            .values(
                updated_at=datetime.now(UTC),
                delivered_at=datetime.now(UTC) if status == "delivered" else None,
                **values,
            )
        ).rowcount
        if updated and outcome.status == "delivered":
            db.session.execute(
                WebhookEndpoint.__table__.update()
                .where(WebhookEndpoint.id == claim.endpoint_id, WebhookEndpoint.failing_since.is_not(None))
                .values(failing_since=None, updated_at=datetime.now(UTC))
            )
        elif updated and outcome.status in ("retry", "failed") and count_failure:
            disabled = _endpoint_failed(claim.endpoint_id)
    if outcome.status in ("retry", "failed") and count_failure:
        metrics.ENDPOINT_FAILURES.labels(endpoint_id=str(claim.endpoint_id)).inc()
    metrics.ENDPOINT_ATTEMPTS.labels(outcome=status if status != "pending" else "retry").inc()
    _log(claim.id, claim.endpoint_id, claim.attempts, status, outcome.code, outcome.error)
    if disabled:
        log.warning("webhook endpoint disabled", extra={"endpoint_id": str(claim.endpoint_id)})
        return "failed"
    if retry_in is not None and retry_in <= webhooks.MAX_COUNTDOWN_SECONDS:
        publish(DELIVER_TASK, [str(claim.id)], countdown=retry_in)
    return "retry" if status == "pending" else status


def _endpoint_failed(endpoint_id: uuid.UUID) -> bool:
    """Mark the endpoint failing; at the window, disable it and fail its pending rows. True if it was disabled now."""
    row = db.session.execute(
        _FAILED, {"endpoint_id": endpoint_id, "window": scaled(DISABLE_AFTER.total_seconds())}
    ).one_or_none()
    if row is None or row.status != "disabled":
        return False
    db.session.execute(
        EndpointDelivery.__table__.update()
        .where(EndpointDelivery.endpoint_id == endpoint_id, EndpointDelivery.status == "pending")
        .values(status="failed", last_error="endpoint disabled", updated_at=datetime.now(UTC))
    )
    return bool(row.just_disabled)


def _log(
    ident: uuid.UUID, endpoint_id: uuid.UUID, attempts: int, status: str, code: int | None, error: str | None
) -> None:
    log.info(
        "operator webhook attempt",
        extra={
            "delivery_id": str(ident),
            "endpoint_id": str(endpoint_id),
            "outcome": status,
            "attempt": attempts,
            "http_status": code,
            "error": error,
        },
    )
