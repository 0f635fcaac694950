"""``Idempotency-Key`` records (API.md): replay, reuse detection and in-flight detection.

``begin`` commits an ``in_flight`` marker in its own short transaction *before* the work, so a
concurrent duplicate sees it and gets 409. The work then marks the record ``completed`` inside
its own transaction (for jobs: together with the job row), so a crash can never leave a job
without its record or a record pointing at no job. A marker left behind by a crashed request
becomes stale after ``idempotency_stale_seconds`` and is taken over.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import IdempotencyKey
from app.problems import Problem
from app.runtime import current_settings


@dataclass(frozen=True)
class Claim:
    user_id: uuid.UUID
    key: str


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any
    location: str | None


def fingerprint(method: str, path: str, body: Any) -> bytes:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).digest()


def valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(0x20 <= ord(ch) <= 0x7E for ch in key)


def begin(user_id: uuid.UUID, key: str, request_fingerprint: bytes) -> Claim | Replay:
    settings = current_settings()
    for _ in range(3):
        inserted = db.session.execute(
            insert(IdempotencyKey)
            .values(
                user_id=user_id,
                key=key,
                fingerprint=request_fingerprint,
                state="in_flight",
                locked_at=func.now(),
                expires_at=func.now() + timedelta(seconds=settings.idempotency_ttl_seconds),
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        ).first()
        if inserted is not None:
            db.session.commit()
            return Claim(user_id, key)
        row = db.session.execute(
            select(
                IdempotencyKey,
                (IdempotencyKey.expires_at <= func.now()).label("expired"),
                (IdempotencyKey.locked_at <= func.now() - timedelta(seconds=settings.idempotency_stale_seconds)).label(
                    "stale"
                ),
            ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        ).first()
        if row is None:  # deleted between our insert and select: try again
            db.session.rollback()
            continue
        record, expired, stale = row
        if expired:
            db.session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.user_id == user_id,
                    IdempotencyKey.key == key,
                    IdempotencyKey.expires_at <= func.now(),
                )
            )
            db.session.commit()
            continue
        if record.fingerprint != request_fingerprint:
            db.session.rollback()
            raise Problem(
                "idempotency-key-reused",
                "This Idempotency-Key was already used with a different request.",
            )
        if record.state == "completed":
            replay = Replay(record.response_status or 200, record.response_body, record.response_location)
            db.session.rollback()
            return replay
        if stale:
            taken = db.session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.user_id == user_id,
                    IdempotencyKey.key == key,
                    IdempotencyKey.state == "in_flight",
                    IdempotencyKey.locked_at == record.locked_at,
                )
                .values(locked_at=func.now())
            ).rowcount
            db.session.commit()
            if taken:
                return Claim(user_id, key)
            continue
        db.session.rollback()
        raise Problem(
            "idempotency-request-in-flight",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    raise Problem("conflict", "The Idempotency-Key is contended; retry shortly.", headers={"Retry-After": "1"})


def complete(
    claim: Claim, status: int, body: Any, *, location: str | None = None, job_id: uuid.UUID | None = None
) -> None:
    """Mark the record completed inside the caller's transaction (the caller commits)."""
    db.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == claim.user_id, IdempotencyKey.key == claim.key)
        .values(
            state="completed", response_status=status, response_body=body, response_location=location, job_id=job_id
        )
    )


def is_completed(claim: Claim) -> bool:
    state = db.session.execute(
        select(IdempotencyKey.state).where(IdempotencyKey.user_id == claim.user_id, IdempotencyKey.key == claim.key)
    ).scalar_one_or_none()
    return state == "completed"


def release(claim: Claim) -> None:
    """Forget an in-flight marker whose request failed, so the client may retry with the same key."""
    db.session.rollback()
    db.session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == claim.user_id,
            IdempotencyKey.key == claim.key,
            IdempotencyKey.state == "in_flight",
        )
    )
    db.session.commit()


def purge_expired(batch: int = 5000) -> int:
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at <= func.now())
        .limit(batch)
        .subquery()
    )
    removed = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.user_id == expired.c.user_id, IdempotencyKey.key == expired.c.key)
    ).rowcount
    db.session.commit()
    return removed
