"""Anonymization (Law 21.719 / GDPR erasure): the ``gdpr.anonymize`` job and how it is asked for.

A person is anonymized, never deleted: their bookings stay (amounts, statuses and times are the
building's books and its stats), but nothing left can say who they were or whom they invited.

**The stores.** Everything held about a person is scrubbed by ``SCRUBBERS``, one function per
table or store, listed in one place and run in that order on each batch of people. A new table
holding personal data adds one entry (as the notifications table did); the
completeness test (``tests/integration/privacy/test_anonymization.py``) scans every
text, json and bytea column of every table, decrypting the encrypted ones, and fails on any value
left behind. Each scrubber is set-based over the batch (one or a few statements), so a batch of
a few hundred people costs a few dozen round trips, not a few thousand.

**The job.** People are taken in id order, ``ANONYMIZATION_BATCH_SIZE`` (200) at a time
(``FOR UPDATE``, so two jobs never anonymize one person twice); each batch commits with the
job's progress and its resume point (``JobRun.checkpoint(..., state=)``: the last id, the
counts). A worker killed mid-batch loses only that batch's uncommitted work; the job taken over
resumes after the last committed id. A person already anonymized (``users.anonymized_at``) is
skipped and counted as such, so a re-run is ``{"anonymized": 0, "skipped": n}``.

**Selection.** ``user_ids`` (any user for platform_admin; for org_admin only residents of its
organization's buildings: anyone else is 404, as if absent) or ``inactive_since`` (residents only,
never staff or platform accounts: with no login since that date, an account created before it,
and no booking still to come or in progress). An org_admin's job carries its organizations, and the
worker applies them again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, func, literal, select, text, tuple_, update

from app.extensions import db
from app.jobs import JobRun, submit
from app.models import (
    AccessEvent,
    AuditLog,
    BlocklistEntry,
    Booking,
    Building,
    IdempotencyKey,
    Job,
    Membership,
    MfaRecoveryCode,
    Resident,
    User,
    WebhookDelivery,
)
from app.models.types import EncryptedJSON, EncryptedText
from app.problems import Problem
from app.runtime import current_settings
from app.security import rbac
from app.security.crypto import blind_index
from app.security.rbac import Capability, Principal
from app.security.sessions import current_sessions
from app.services import audit, domain_events, notifications, staff

log = logging.getLogger(__name__)

ANONYMOUS = "Anonymous"
#: What a scrubbed blocklist value reads as (the entry keeps banning: its blind index stays).
SCRUBBED_VALUE = "[anonymized]"
#: A scrubbed job payload: the job stays (its type, status and times), its inputs go.
SCRUBBED_PAYLOAD: dict[str, Any] = {"scrubbed": True}
#: Bookings in these states are still to come or in progress: their resident is not inactive.
LIVE_STATUSES = ("pending", "confirmed", "checked_in", "overstay")
#: The login audit action (a completed login, with or without a second factor).
LOGIN_ACTION = "auth.login"


def anonymized_email() -> str:
    """``deleted-<uuid>@anonymized.invalid``: RFC 6761's ``.invalid`` never resolves, and the uuid is
    fresh (deliberately unrelated to the account's id, so the address says nothing either)."""
    return f"deleted-{uuid.uuid4()}@anonymized.invalid"


# --- the batch: who, and the identifiers their data is found by ----------------------------------


@dataclass
class Batch:
    """One batch of people being anonymized, with what the scrubbers need, read before any change."""

    job_id: uuid.UUID
    user_ids: list[uuid.UUID]
    resident_ids: list[uuid.UUID] = field(default_factory=list)
    booking_ids: list[uuid.UUID] = field(default_factory=list)
    #: (blocklist type, blind index) of every identifier of theirs: e-mail, RUT, phone, their visitors' plates.
    identifiers: set[tuple[str, bytes]] = field(default_factory=set)
    #: user id -> (organization id, building id) of their resident profile, for the event.
    places: dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None]] = field(default_factory=dict)

    @classmethod
    def collect(cls, job_id: uuid.UUID, user_ids: list[uuid.UUID]) -> Batch:
        batch = cls(job_id, user_ids)
        for user_id, email_bidx in db.session.execute(select(User.id, User.email_bidx).where(User.id.in_(user_ids))):
            batch.identifiers.add(("email", bytes(email_bidx)))
            batch.places[user_id] = (None, None)
        residents = db.session.execute(
            select(
                Resident.id,
                Resident.user_id,
                Resident.rut_bidx,
                Resident.phone_bidx,
                Building.organization_id,
                Building.id,
            )
            .join(Building, Building.id == Resident.building_id)
            .where(Resident.user_id.in_(user_ids))
        ).all()
        for resident_id, user_id, rut_bidx, phone_bidx, organization_id, building_id in residents:
            batch.resident_ids.append(resident_id)
            batch.places[user_id] = (organization_id, building_id)
            if rut_bidx is not None:
                batch.identifiers.add(("rut", bytes(rut_bidx)))
            if phone_bidx is not None:
                batch.identifiers.add(("phone", bytes(phone_bidx)))
        if batch.resident_ids:
            bookings = db.session.execute(
                select(Booking.id, Booking.vehicle_plate).where(Booking.resident_id.in_(batch.resident_ids))
            ).all()
            for booking_id, plate in bookings:
                batch.booking_ids.append(booking_id)
                if plate:
                    batch.identifiers.add(("plate", blind_index("plate", plate)))
        return batch


# --- the stores, one scrubber each --------------------------------------------------------------

Scrubber = Callable[[Batch], int]


def scrub_blocklist_entries(batch: Batch) -> int:
    """Entries about them keep banning (by blind index) but no longer show the value or the reason."""
    if not batch.identifiers:
        return 0
    # One expanding tuple IN, not an OR of a few hundred pairs (compiling that cost a fifth of a batch).
    matches = tuple_(BlocklistEntry.type, BlocklistEntry.value_bidx).in_(sorted(batch.identifiers))
    scrubbed = cast_value(SCRUBBED_VALUE, "blocklist_entries.value")
    return db.session.execute(
        update(BlocklistEntry)
        .where(matches)
        .values(value=scrubbed, reason=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def cast_value(value: str, associated_data: str) -> Any:
    """A literal encrypted once for a whole set-based UPDATE (one ciphertext, one nonce)."""
    return literal(value, EncryptedText(associated_data))


def scrub_bookings(batch: Batch) -> int:
    """Visitor data goes; amounts, statuses and times stay, so every stat is unchanged."""
    if not batch.resident_ids:
        return 0
    return db.session.execute(
        update(Booking)
        .where(Booking.resident_id.in_(batch.resident_ids))
        .values(**scrubbed_visitor(), updated_at=func.now())
        .execution_options(synchronize_session=False)
    ).rowcount


def scrubbed_visitor() -> dict[str, Any]:
    """A booking's visitor data, scrubbed: what anonymization and retention both write."""
    return {
        "visitor_name": cast_value(ANONYMOUS, "bookings.visitor_name"),
        "visitor_phone": None,
        "vehicle_plate": None,
        "plate_bidx": None,
    }


def scrub_access_events(batch: Batch) -> int:
    """The plate the concierge typed at the gate for their bookings (the action and times stay)."""
    if not batch.booking_ids:
        return 0
    return db.session.execute(
        update(AccessEvent)
        .where(AccessEvent.booking_id.in_(batch.booking_ids), AccessEvent.observed_plate.is_not(None))
        .values(observed_plate=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def scrub_jobs(batch: Batch) -> int:
    """Their jobs' payloads, results and callback URLs (bookings' visitor data, exports); the rows stay."""
    return db.session.execute(
        update(Job)
        .where(Job.owner_user_id.in_(batch.user_ids), Job.id != batch.job_id)
        .values(
            payload=literal(SCRUBBED_PAYLOAD, EncryptedJSON("jobs.payload")),
            result=None,
            callback_url=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def delete_webhook_deliveries(batch: Batch) -> int:
    """Callbacks to their URLs, delivered or pending: a callback to a person nobody is any more is void."""
    return db.session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.user_id.in_(batch.user_ids))
        .execution_options(synchronize_session=False)
    ).rowcount


def delete_idempotency_keys(batch: Batch) -> int:
    """Their recorded responses (a booking's response holds its visitor data)."""
    return db.session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.user_id.in_(batch.user_ids))
        .execution_options(synchronize_session=False)
    ).rowcount


def delete_recovery_codes(batch: Batch) -> int:
    return db.session.execute(
        delete(MfaRecoveryCode)
        .where(MfaRecoveryCode.user_id.in_(batch.user_ids))
        .execution_options(synchronize_session=False)
    ).rowcount


def scrub_residents(batch: Batch) -> int:
    """Name "Anonymous"; RUT, phone and their blind indexes cleared (the RUT may register again)."""
    if not batch.resident_ids:
        return 0
    return db.session.execute(
        update(Resident)
        .where(Resident.id.in_(batch.resident_ids))
        .values(
            first_name=cast_value(ANONYMOUS, "residents.first_name"),
            last_name=cast_value("", "residents.last_name"),
            rut=None,
            rut_bidx=None,
            phone=None,
            phone_bidx=None,
            updated_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def scrub_users(batch: Batch) -> int:
    """A fresh ``deleted-<uuid>`` address (so the old one may register again), no password, no MFA."""
    rows = []
    for user_id in batch.user_ids:
        email = anonymized_email()
        rows.append({"uid": user_id, "email": email, "bidx": blind_index("email", email)})
    statement = (
        update(User.__table__)
        .where(User.__table__.c.id == bindparam("uid"))
        .values(
            email_encrypted=bindparam("email", type_=EncryptedText("users.email")),
            email_bidx=bindparam("bidx"),
            password_hash=None,
            is_active=False,
            webhook_secret_encrypted=None,
            mfa_enabled=False,
            mfa_secret_encrypted=None,
            mfa_pending_secret_encrypted=None,
            mfa_last_step=None,
            anonymized_at=func.now(),
            anonymized_by_job=batch.job_id,
            updated_at=func.now(),
        )
    )
    db.session.execute(statement, rows)
    return len(rows)


def revoke_sessions(batch: Batch) -> int:
    """Redis: every session ends now (an access token still held answers 401 at once)."""
    store = current_sessions()
    return sum(len(store.revoke_all(str(user_id))) for user_id in batch.user_ids)


_SCRUB_AUDIT = text(
    """
    SELECT coalesce(sum(audit_logs_scrub(u, 'user', ARRAY[u::text])), 0)
           + audit_logs_scrub(NULL, 'resident', CAST(:residents AS text[]))
           + audit_logs_scrub(NULL, 'booking', CAST(:bookings AS text[]))
    FROM unnest(CAST(:users AS uuid[])) AS u
    """
)


def scrub_audit_logs(batch: Batch) -> int:
    """Rows they acted in and rows about them, their bookings or their resident profile: through
    ``audit_logs_scrub`` (migration 0006), the one change the trail's trigger allows: ip, user
    agent and metadata values blanked, ``scrubbed`` set; actions, entities and times stay."""
    return int(
        db.session.execute(
            _SCRUB_AUDIT,
            {
                "users": [str(u) for u in batch.user_ids],
                "residents": [str(r) for r in batch.resident_ids],
                "bookings": [str(b) for b in batch.booking_ids],
            },
        ).scalar_one()
    )


def scrub_notifications(batch: Batch) -> int:
    """Messages to them and to their bookings' visitors keep their log (template, status, times)
    but lose destination, blind index and variables; preferences and reset codes go."""
    return notifications.scrub_for_users(batch.user_ids)


@dataclass(frozen=True)
class Store:
    name: str
    scrub: Scrubber


#: Every store holding personal data, in the order they are scrubbed (identifiers are read
#: before the first, so the order matters only for readability). One entry per store.
SCRUBBERS: tuple[Store, ...] = (
    Store("blocklist_entries", scrub_blocklist_entries),
    Store("bookings", scrub_bookings),
    Store("access_events", scrub_access_events),
    Store("jobs", scrub_jobs),
    Store("webhook_deliveries", delete_webhook_deliveries),
    Store("notifications", scrub_notifications),
    Store("idempotency_keys", delete_idempotency_keys),
    Store("mfa_recovery_codes", delete_recovery_codes),
    Store("residents", scrub_residents),
    Store("users", scrub_users),
    Store("sessions", revoke_sessions),
    Store("audit_logs", scrub_audit_logs),
)


def anonymize_batch(batch: Batch, actor: audit.Actor) -> dict[str, int]:
    """Scrub every store for the batch, in the current transaction; audit and emit per person."""
    counts = {store.name: store.scrub(batch) for store in SCRUBBERS}
    for user_id in batch.user_ids:
        # After the scrub, so this row (ids only, no ip) is the trail's lasting record of it.
        audit.record("user.anonymized", actor, entity_type="user", entity_id=user_id)
        organization_id, building_id = batch.places.get(user_id, (None, None))
        domain_events.user_anonymized(user_id, organization_id, building_id)
    return counts


# --- selection ------------------------------------------------------------------------------------


def _candidates(payload: dict[str, Any]) -> Select[Any]:
    """The job's people, as a query on ``users.id`` (anonymized ones included: they count as skipped)."""
    query = select(User.id)
    organizations = payload.get("organization_ids")
    if organizations is not None or payload.get("inactive_since"):
        # Residents only: an organization never erases staff, and inactivity never picks them.
        query = query.join(Resident, Resident.user_id == User.id).where(
            User.platform_role.is_(None), ~exists().where(Membership.user_id == User.id)
        )
    if organizations is not None:
        query = query.join(Building, Building.id == Resident.building_id).where(
            Building.organization_id.in_([uuid.UUID(o) for o in organizations])
        )
    if payload.get("user_ids") is not None:
        query = query.where(User.id.in_([uuid.UUID(u) for u in payload["user_ids"]]))
    if since := payload.get("inactive_since"):
        cutoff = date.fromisoformat(since)
        logged_in = exists().where(
            AuditLog.actor_id == User.id, AuditLog.action == LOGIN_ACTION, AuditLog.occurred_at >= cutoff
        )
        upcoming = exists().where(
            Booking.resident_id == Resident.id, Booking.status.in_(LIVE_STATUSES), Booking.block_end > func.now()
        )
        query = query.where(User.created_at < cutoff, ~logged_in, ~upcoming)
    return query


def anonymize(run: JobRun) -> dict[str, int]:
    """The ``gdpr.anonymize`` job: batches from the resume point, each committed with its progress."""
    state = dict(run.resume or {})
    candidates = _candidates(run.payload)
    if "total" not in state:
        total = db.session.execute(select(func.count()).select_from(candidates.subquery())).scalar_one()
        state = {"after": None, "done": 0, "total": total}
        run.checkpoint(0, total, state)
    else:
        log.info("anonymization resumed", extra={"job_id": str(run.id), "done": state["done"], "total": state["total"]})
    actor = audit.Actor.job(run.owner_user_id)
    size = current_settings().anonymization_batch_size
    while True:
        query = candidates.add_columns(User.anonymized_at).order_by(User.id).limit(size)
        if state["after"]:
            query = query.where(User.id > uuid.UUID(state["after"]))
        rows = db.session.execute(query.with_for_update(of=User)).all()
        if not rows:
            break
        fresh = [user_id for user_id, anonymized_at in rows if anonymized_at is None]
        if fresh:
            anonymize_batch(Batch.collect(run.id, fresh), actor)
        state = {**state, "after": str(rows[-1][0]), "done": state["done"] + len(rows)}
        total = max(state["total"], state["done"])
        run.checkpoint(state["done"], total, state)
    # Exactly once, whatever crashes happened: the people this job anonymized are marked with it.
    anonymized = db.session.execute(
        select(func.count()).select_from(User).where(User.anonymized_by_job == run.id)
    ).scalar_one()
    result = {"anonymized": anonymized, "skipped": state["done"] - anonymized}
    log.info("anonymization finished", extra={"job_id": str(run.id), **result})
    return result


# --- asking for it ----------------------------------------------------------------------------------


def request_self(principal: Principal, actor: audit.Actor, *, callback_url: str | None = None) -> dict[str, Any]:
    """``POST /v1/me/anonymize``, once the password was checked: a job anonymizing the caller."""
    return submit("gdpr.anonymize", {"user_ids": [str(principal.user_id)]}, actor, callback_url=callback_url)


def request_bulk(
    principal: Principal,
    actor: audit.Actor,
    *,
    user_ids: list[uuid.UUID] | None = None,
    inactive_since: date | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """``POST /v1/admin/anonymizations``: every named person must be in the caller's scope (404 if not)."""
    rbac.require(principal, Capability.ANONYMIZE)
    everywhere = rbac.can(principal, Capability.ANONYMIZE, rbac.PLATFORM_SCOPE)
    payload: dict[str, Any] = {}
    if not everywhere:
        payload["organization_ids"] = sorted(str(o) for o in principal.org_ids("org_admin"))
    if user_ids is not None:
        wanted = sorted(set(user_ids))
        for scope in staff.person_scopes(wanted).values():
            rbac.require(principal, Capability.ANONYMIZE, scope)
        if principal.user_id in wanted:
            raise Problem("conflict", "Anonymize yourself with POST /v1/me/anonymize (it asks for your password).")
        payload["user_ids"] = [str(u) for u in wanted]
    else:
        assert inactive_since is not None
        payload["inactive_since"] = inactive_since.isoformat()
    return submit("gdpr.anonymize", payload, actor, callback_url=callback_url)
