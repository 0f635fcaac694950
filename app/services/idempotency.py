"""``Idempotency-Key`` records (API.md): replay, reuse detection and in-flight detection.

Everything happens inside the request's one unit of work (``app/unit_of_work.py``), so the
change a request makes and the record of its key commit together or not at all:

1. ``begin`` takes a transaction-scoped advisory lock on (caller, key) with
   ``pg_try_advisory_xact_lock``. A concurrent request with the same key finds it taken and
   answers 409 ``idempotency-request-in-flight`` with ``Retry-After``; nothing waits on a lock.
2. Holding it, ``begin`` reads the record: the same fingerprint replays the stored response, a
   different one is 422 ``idempotency-key-reused``; an expired record is forgotten.
3. The use case runs; ``complete`` writes the record (key, HMAC fingerprint of the request, the
   response) in the same transaction. The commit publishes both and releases the lock.

A request that fails (a problem, a crash, a PostgreSQL stop, a killed backend) rolls back: its
lock goes with its transaction or connection and no record is left, so a retry with the same key
simply runs. There is no in-flight row to go stale.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import IdempotencyKey
from app.problems import Problem
from app.runtime import current_settings
from app.security.crypto import blind_index

#: Separates this module's advisory locks from any other user of ``pg_try_advisory_xact_lock``.
LOCK_NAMESPACE = "idempotency"


@dataclass(frozen=True)
class Claim:
    """This request holds the (caller, key) lock; ``complete`` records its response."""

    user_id: uuid.UUID
    key: str
    fingerprint: bytes


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any
    location: str | None


def fingerprint(method: str, path: str, body: Any) -> bytes:
    """HMAC-SHA256 (the blind-index key) of the canonical request: equal requests, equal bytes.

    Keyed, so a stored fingerprint cannot be tested against guessed bodies (a plate, a phone).
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return blind_index("idempotency", f"{method}\n{path}\n{canonical}")


def valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(0x20 <= ord(ch) <= 0x7E for ch in key)


def begin(user_id: uuid.UUID, key: str, request_fingerprint: bytes) -> Claim | Replay:
    """Lock the key for this transaction, then replay, refuse, or let the request run."""
    locked = db.session.execute(
        select(func.pg_try_advisory_xact_lock(func.hashtextextended(f"{LOCK_NAMESPACE}:{user_id}:{key}", 0)))
    ).scalar_one()
    if not locked:
        raise Problem(
            "idempotency-request-in-flight",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    row = db.session.execute(
        select(
            IdempotencyKey.fingerprint,
            IdempotencyKey.response_status,
            IdempotencyKey.response_body,
            IdempotencyKey.response_location,
            (IdempotencyKey.expires_at <= func.now()).label("expired"),
        ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).first()
    if row is not None and row.expired:
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
        row = None
    if row is None:
        return Claim(user_id, key, request_fingerprint)
    if bytes(row.fingerprint) != request_fingerprint:
        raise Problem("idempotency-key-reused", "This Idempotency-Key was already used with a different request.")
    return Replay(row.response_status, row.response_body, row.response_location)


def complete(
    claim: Claim, status: int, body: Any, *, location: str | None = None, job_id: uuid.UUID | None = None
) -> None:
    """Record the response in the current transaction (the unit of work commits it with the change)."""
    db.session.execute(
        insert(IdempotencyKey).values(
            user_id=claim.user_id,
            key=claim.key,
            fingerprint=claim.fingerprint,
            response_status=status,
            response_body=body,
            response_location=location,
            job_id=job_id,
            expires_at=func.now() + timedelta(seconds=current_settings().idempotency_ttl_seconds),
        )
    )


def purge_expired(batch: int = 5000) -> int:
    """Delete up to ``batch`` expired records in the current unit of work; the number deleted."""
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at <= func.now())
        .limit(batch)
        .subquery()
    )
    return db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.user_id == expired.c.user_id, IdempotencyKey.key == expired.c.key)
    ).rowcount
