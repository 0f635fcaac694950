"""WhatsApp notifications as use cases: queue a message, send it (the ``notification.send`` job),
follow Twilio's status callbacks, list a user's messages, preferences, and scrub a user's rows.

A message is a ``notifications`` row plus a ``notification.send`` job whose payload is the row's id
(a Celery message carries the job id only; the destination and the variables live encrypted in the
row). ``queue`` writes both in the caller's unit of work, so a message exists if and only if the
change that caused it committed (a booking's event delivery, a reset request, a login).

Sending (``send``, the job's handler) is at most once per row:

1. The row is locked and must be ``queued``; it becomes ``sending`` (attempt + 1) and that is
   **committed before the provider call** (``run.checkpoint``). A redelivered or taken-over job
   finds ``sending`` and never calls the provider again.
2. The provider call: ``sent`` with Twilio's sid, or a ``ProviderError`` the delivery policy
   (``app.domain.notifications``) turns into a retry (the row back to ``queued``, the job re-queued
   after the policy's backoff via ``RetryLater``) or a final ``failed`` with Twilio's code (an
   opt-out code also records the number as opted out).

The one duplicate window: a worker that dies after Twilio accepted the message and before the
final commit leaves the row ``sending`` with no sid. Twilio has no idempotency key, so sending
again could deliver it twice; the row is left ``sending`` (outcome unknown) and never re-sent: at
most once, never twice. A read timeout (``maybe_sent``) is the same uncertainty on the wire; the
policy retries it, since a lost confirmation is worse than a rare duplicate of one.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Uuid, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.domain.identity import InvalidIdentity, normalize_phone
from app.domain.notifications import (
    DEFAULT_TIMEZONE,
    DELIVERY_POLICY,
    TEMPLATES,
    DeliveryPolicy,
    GiveUp,
    SecurityChange,
    Template,
    is_opt_out,
    next_status,
    render,
    should_send,
)
from app.extensions import db
from app.jobs import JobRun, RetryLater, submit
from app.models import (
    Booking,
    Building,
    Notification,
    NotificationOptOut,
    NotificationPreference,
    NotificationStatus,
    PasswordResetCode,
    Recipient,
    Resident,
    VisitorSpot,
)
from app.models.pagination import paginate
from app.notifications import OutboundMessage, ProviderError, current_backend
from app.observability.metrics import NOTIFICATION_PROVIDER_LATENCY, NOTIFICATIONS
from app.problems import Problem
from app.runtime import current_settings
from app.security.crypto import blind_index
from app.services import audit

log = logging.getLogger(__name__)

JOB_TYPE = "notification.send"

#: Which booking event sends which template, and whether the visitor gets it too (DOMAIN.md).
BOOKING_TEMPLATES: dict[str, tuple[Template, bool]] = {
    "booking.confirmed": (Template.BOOKING_CONFIRMED, True),
    "booking.cancelled": (Template.BOOKING_CANCELLED, True),
    "booking.checked_in": (Template.GUEST_CHECKED_IN, False),
}


def policy() -> DeliveryPolicy:
    """The delivery policy in this profile's units (tests shrink the backoff)."""
    return DELIVERY_POLICY.scaled(current_settings().notification_retry_scale)


def destination_index(phone: str) -> bytes:
    return blind_index("phone", phone)


def _now() -> datetime:
    return datetime.now(UTC)


# --- queueing -----------------------------------------------------------------------------------


def booking_updates_enabled(user_id: uuid.UUID) -> bool:
    preference = db.session.get(NotificationPreference, user_id)
    return True if preference is None else preference.booking_updates


def opted_out(destination_bidx: bytes) -> bool:
    return db.session.get(NotificationOptOut, destination_bidx) is not None


def queue(
    template: Template,
    *,
    to: str,
    recipient: Recipient,
    variables: Mapping[str, Any],
    timezone: str = DEFAULT_TIMEZONE,
    user_id: uuid.UUID | None = None,
    booking_id: uuid.UUID | None = None,
) -> Notification | None:
    """Record one message and its ``notification.send`` job in the current unit of work.

    None (nothing recorded) when the phone is not a usable number, or when a booking update is
    unwanted: the resident turned booking updates off, or the number opted out. Security notices
    and reset codes always go. ``variables`` must render (checked now, so a bad message fails its
    cause, not a worker later).
    """
    try:
        phone = normalize_phone(to)
    except InvalidIdentity:
        log.warning("notification not queued: no usable phone number", extra={"template": template.value})
        return None
    bidx = destination_index(phone)
    wanted = should_send(
        template,
        booking_updates=booking_updates_enabled(user_id) if user_id and recipient is Recipient.RESIDENT else True,
        opted_out=opted_out(bidx),
    )
    if not wanted:
        NOTIFICATIONS.labels(template.value, "suppressed").inc()
        return None
    render(template, variables, timezone)  # raises ValueError on a programming error, before anything is written
    row = Notification(
        id=uuid.uuid4(),
        user_id=user_id,
        booking_id=booking_id,
        recipient=recipient.value,
        template=template.value,
        destination=phone,
        destination_bidx=bidx,
        variables=dict(variables),
        timezone=timezone,
        status=NotificationStatus.QUEUED.value,
        attempts=0,
    )
    db.session.add(row)
    db.session.flush()
    submit(JOB_TYPE, {"notification_id": str(row.id)}, audit.Actor.system())
    NOTIFICATIONS.labels(template.value, NotificationStatus.QUEUED.value).inc()
    return row


@dataclass(frozen=True)
class _BookingFacts:
    """What a booking's messages need, and nothing else (every encrypted column read is a decrypt)."""

    visitor_name: str
    visitor_phone: str | None
    confirmation_code: str
    block_start: datetime
    block_end: datetime
    checked_in_at: datetime | None
    resident_phone: str | None
    resident_user_id: uuid.UUID
    building_name: str
    timezone: str | None
    spot_number: str


#: Built once (the subscriber runs it for every booking event). Columns, not entities: loading the
#: whole booking, resident and building decrypted eight columns for the three a message uses
#: (9 % of the worker's CPU in the bookings profile; bench/README.md "Issue 15").
_BOOKING_FACTS = (
    select(
        Booking.visitor_name,
        Booking.visitor_phone,
        Booking.confirmation_code,
        Booking.block_start,
        Booking.block_end,
        Booking.checked_in_at,
        Resident.phone,
        Resident.user_id,
        Building.name,
        Building.timezone,
        VisitorSpot.spot_number,
    )
    .join(Resident, Resident.id == Booking.resident_id)
    .join(Building, Building.id == Booking.building_id)
    .join(VisitorSpot, VisitorSpot.id == Booking.spot_id)
    .where(Booking.id == bindparam("booking_id", type_=Uuid))
)


def _booking_facts(booking_id: uuid.UUID) -> _BookingFacts | None:
    row = db.session.execute(_BOOKING_FACTS, {"booking_id": booking_id}).first()
    return None if row is None else _BookingFacts(*row)


def _iso(instant: datetime | None) -> str | None:
    return instant.astimezone(UTC).isoformat() if instant is not None else None


def _booking_variables(template: Template, facts: _BookingFacts, occurred_at: datetime) -> dict[str, Any]:
    values = {
        "visitor_name": facts.visitor_name,
        "building": facts.building_name,
        "spot": facts.spot_number,
        "starts_at": _iso(facts.block_start),
        "ends_at": _iso(facts.block_end),
        "confirmation_code": facts.confirmation_code,
        "checked_in_at": _iso(facts.checked_in_at or occurred_at),
    }
    return {name: values[name] for name in TEMPLATES[template].variables}


def for_booking_event(event_type: str, booking_id: uuid.UUID, occurred_at: datetime) -> list[Notification]:
    """The messages one booking event sends: the resident's (if wanted), and the visitor's when a
    phone was given and the template is theirs too. Called by the notifications subscriber."""
    template, to_visitor = BOOKING_TEMPLATES[event_type]
    facts = _booking_facts(booking_id)
    if facts is None:
        return []
    variables = _booking_variables(template, facts, occurred_at)
    timezone = facts.timezone or DEFAULT_TIMEZONE
    recipients = [(Recipient.RESIDENT, facts.resident_phone, facts.resident_user_id)]
    if to_visitor:
        recipients.append((Recipient.VISITOR, facts.visitor_phone, None))
    queued = [
        queue(
            template,
            to=number,
            recipient=recipient,
            variables=variables,
            timezone=timezone,
            user_id=user_id,
            booking_id=booking_id,
        )
        for recipient, number, user_id in recipients
        if number
    ]
    return [row for row in queued if row is not None]


def account_phone(user_id: uuid.UUID) -> tuple[str, str] | None:
    """The phone an account's own messages go to (its resident profile's) and its building's zone."""
    row = db.session.execute(
        select(Resident.phone, Building.timezone)
        .join(Building, Building.id == Resident.building_id)
        .where(Resident.user_id == user_id)
    ).first()
    if row is None or not row[0]:
        return None
    return row[0], row[1] or DEFAULT_TIMEZONE


def security_notice(user_id: uuid.UUID, change: SecurityChange, occurred_at: datetime | None = None) -> None:
    """Tell the account holder what changed (MFA, password, a new login); nothing without a phone."""
    found = account_phone(user_id)
    if found is None:
        return
    phone, timezone = found
    queue(
        Template.SECURITY_NOTICE,
        to=phone,
        recipient=Recipient.ACCOUNT,
        variables={"change": change.value, "occurred_at": _iso(occurred_at or _now())},
        timezone=timezone,
        user_id=user_id,
    )


# --- sending (the notification.send job) ----------------------------------------------------------


def send(run: JobRun) -> dict[str, Any]:
    """Handler of ``notification.send``: send the row's message at most once (see the module doc)."""
    notification_id = uuid.UUID(str(run.payload["notification_id"]))
    row = db.session.get(Notification, notification_id, with_for_update=True)
    if row is None:
        raise Problem("not-found", "The notification no longer exists.")
    if row.status != NotificationStatus.QUEUED:
        if row.status == NotificationStatus.SENDING:
            log.warning(
                "notification left sending: an earlier attempt died in the provider call; not sent again",
                extra={"notification_id": str(row.id), "template": row.template},
            )
        return _result(row)
    template = Template(row.template)
    if row.destination is None or row.variables is None:  # scrubbed while it waited
        return _finish_failed(row, None, reason="scrubbed")
    if TEMPLATES[template].booking_update and row.destination_bidx and opted_out(row.destination_bidx):
        optout = db.session.get(NotificationOptOut, row.destination_bidx)
        return _finish_failed(row, optout.error_code if optout else None, reason="opted_out")
    message = OutboundMessage(
        to=row.destination, rendered=render(template, row.variables, row.timezone), reference=str(row.id)
    )
    row.status, row.attempts, row.sending_at = NotificationStatus.SENDING.value, row.attempts + 1, _now()
    attempt = row.attempts
    run.checkpoint(0, 1)  # committed: from here on a redelivered job never sends this row again
    backend = current_backend()
    started = time.monotonic()
    try:
        result = backend.send(message)
    except ProviderError as error:
        NOTIFICATION_PROVIDER_LATENCY.labels(backend.name, "error").observe(time.monotonic() - started)
        return _after_failure(notification_id, template, attempt, error)
    NOTIFICATION_PROVIDER_LATENCY.labels(backend.name, "accepted").observe(time.monotonic() - started)
    db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(
            status=NotificationStatus.SENT.value,
            provider_sid=result.provider_sid,
            error_code=None,
            sent_at=_now(),
            **_spent_variables(template),
        )
    )
    NOTIFICATIONS.labels(template.value, NotificationStatus.SENT.value).inc()
    return {"notification_id": str(notification_id), "status": NotificationStatus.SENT.value}


def _spent_variables(template: Template) -> dict[str, Any]:
    """A reset code must not outlive its message: its variables go once it is sent or failed."""
    return {"variables": None} if template is Template.PASSWORD_RESET_CODE else {}


def _after_failure(
    notification_id: uuid.UUID, template: Template, attempt: int, error: ProviderError
) -> dict[str, Any]:
    decision = policy().decide(error.failure, attempt)
    if not isinstance(decision, GiveUp):
        db.session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(status=NotificationStatus.QUEUED.value, error_code=error.code)
        )
        NOTIFICATIONS.labels(template.value, "retrying").inc()
        raise RetryLater(decision.after_seconds)
    row = db.session.get(Notification, notification_id)
    assert row is not None
    if decision.opted_out:
        _record_opt_out(row, decision.error_code)
    return _finish_failed(row, decision.error_code, reason="exhausted" if decision.exhausted else "refused")


def _record_opt_out(row: Notification, error_code: int | None) -> None:
    """The number said stop (21610/63014): later booking messages to it are not sent."""
    if row.destination_bidx is None or error_code is None:
        return
    db.session.execute(
        pg_insert(NotificationOptOut)
        .values(destination_bidx=row.destination_bidx, error_code=error_code)
        .on_conflict_do_nothing()
    )


def _finish_failed(row: Notification, error_code: int | None, *, reason: str) -> dict[str, Any]:
    """End the row ``failed``; the job fails too, keeping the row's state (``keep_changes``)."""
    row.status, row.error_code, row.failed_at = NotificationStatus.FAILED.value, error_code, _now()
    if row.template == Template.PASSWORD_RESET_CODE:
        row.variables = None
    NOTIFICATIONS.labels(row.template, NotificationStatus.FAILED.value).inc()
    log.info(
        "notification failed",
        extra={"notification_id": str(row.id), "template": row.template, "error_code": error_code, "reason": reason},
    )
    code = f" (Twilio error {error_code})" if error_code is not None else ""
    raise Problem(
        "job-failed",
        f"The message was not sent: {reason}{code}.",
        extra={"notification_id": str(row.id), "error_code": error_code},
        keep_changes=True,
    )


def _result(row: Notification) -> dict[str, Any]:
    return {"notification_id": str(row.id), "status": row.status}


# --- status callbacks ---------------------------------------------------------------------------

_STATUS_TIMESTAMPS = {"delivered": "delivered_at", "read": "read_at", "failed": "failed_at", "undelivered": "failed_at"}


def apply_status(provider_sid: str, reported: str, error_code: int | None) -> bool:
    """Move the message Twilio calls ``provider_sid`` to ``reported`` if that is forward; True if it moved.

    Unknown sids and backward or unknown statuses change nothing (callbacks arrive late, twice and
    out of order); the row is locked so two callbacks at once cannot both move it.
    """
    row = db.session.execute(
        select(Notification).where(Notification.provider_sid == provider_sid).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return False
    status = next_status(row.status, reported)
    if status is None:
        return False
    row.status = status
    if status in ("failed", "undelivered") and error_code is not None:
        row.error_code = error_code
    stamp = _STATUS_TIMESTAMPS.get(status)
    if stamp:
        setattr(row, stamp, _now())
    if status in ("failed", "undelivered") and is_opt_out(error_code):
        _record_opt_out(row, error_code)
    NOTIFICATIONS.labels(row.template, status).inc()
    return True


# --- the account's view -------------------------------------------------------------------------


def list_for_user(user_id: uuid.UUID, *, limit: int, cursor: str | None) -> tuple[list[Notification], str | None]:
    """Messages sent to the user, newest first."""
    query = select(Notification).where(Notification.user_id == user_id)
    return paginate(query, [Notification.created_at, Notification.id], limit=limit, cursor=cursor, descending=True)


def set_preferences(user_id: uuid.UUID, *, booking_updates: bool, actor: audit.Actor) -> bool:
    db.session.execute(
        pg_insert(NotificationPreference)
        .values(user_id=user_id, booking_updates=booking_updates)
        .on_conflict_do_update(
            index_elements=[NotificationPreference.user_id],
            set_={"booking_updates": booking_updates, "updated_at": _now()},
        )
    )
    audit.record(
        "notifications.preferences_changed",
        actor,
        entity_type="user",
        entity_id=user_id,
        details={"booking_updates": booking_updates},
    )
    return booking_updates


# --- anonymization ------------------------------------------------------------------------------


def scrub_for_users(user_ids: Collection[uuid.UUID]) -> int:
    """Erase the personal data of these users' messages, in the current unit of work (GDPR, issue 14).

    The rows stay (status, template, times: the log of what was sent), but their destinations,
    blind indexes and variables go: the messages to the user, and those to the visitors of the
    user's bookings (visitor name and phone are the booking's personal data). Their preferences and
    any reset code go too. Returns the number of messages scrubbed. Opt-outs are kept: they are a
    blind index only, and honouring "stop" must survive the person's anonymization.
    """
    bookings = (
        select(Booking.id).join(Resident, Resident.id == Booking.resident_id).where(Resident.user_id.in_(user_ids))
    )
    scrubbed = db.session.execute(
        update(Notification)
        .where(Notification.user_id.in_(user_ids) | Notification.booking_id.in_(bookings))
        .values(destination=None, destination_bidx=None, variables=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.execute(delete(NotificationPreference).where(NotificationPreference.user_id.in_(user_ids)))
    db.session.execute(delete(PasswordResetCode).where(PasswordResetCode.user_id.in_(user_ids)))
    return int(scrubbed or 0)


def scrub_for_user(user_id: uuid.UUID) -> int:
    """``scrub_for_users`` of one user."""
    return scrub_for_users([user_id])


def export_for_user(user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's messages for a data export (API.md ``"notifications": [...]``; GDPR, issue 14).

    What is held about the user: each message sent to them with its destination (their phone) and
    variables, oldest first. A reset code's variables are never exported (a live code would be a
    credential in a file).
    """
    query = select(Notification).where(Notification.user_id == user_id).order_by(Notification.created_at)
    return [
        {
            "id": str(row.id),
            "channel": row.channel,
            "template": row.template,
            "status": row.status,
            "error_code": row.error_code,
            "destination": row.destination,
            "variables": None if row.template == Template.PASSWORD_RESET_CODE else row.variables,
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
        }
        for row in db.session.execute(query).scalars()
    ]


# --- operations ---------------------------------------------------------------------------------


def recent(limit: int) -> list[Notification]:
    """The newest messages (``flask notifications show``)."""
    return list(
        db.session.execute(select(Notification).order_by(Notification.created_at.desc()).limit(limit)).scalars()
    )


def masked(phone: str | None) -> str:
    """A destination as an operator may see it: the last three digits."""
    if not phone:
        return "(scrubbed)"
    return "*" * max(0, len(phone) - 3) + phone[-3:]


def preview(row: Notification) -> str | None:
    """The message's text, when its variables are still held."""
    if row.variables is None:
        return None
    try:
        return render(row.template, row.variables, row.timezone).body
    except ValueError:
        return None
