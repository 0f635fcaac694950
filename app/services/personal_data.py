"""The right of access: ``gdpr.export``, every personal datum held about the caller, as one document.

The export is a job (it reads every store and decrypts), its result is the ``ExportResult`` shape
of API.md, stored encrypted like every job result and purged ``EXPORT_RETENTION_DAYS`` (7) after
the job finished (``app/services/retention.py``, nightly): a copy of a person's data must not
outlive its purpose.

What is theirs, and only theirs: their account and resident profile, their bookings with the
visitor data they entered, their live sessions, and the audit rows of what they did (with the ip
and user agent they came from) or of what was done to their account (without the staff member's
id and ip, which are the staff member's personal data).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select

from app.domain.timefmt import rfc3339
from app.extensions import db
from app.jobs import JobRun, submit
from app.jobs.results import (
    AuditLogDocument,
    ExportedResident,
    ExportedSession,
    ExportedUser,
    ExportResult,
)
from app.models import AuditLog, Booking, Resident, Unit, User
from app.security.rbac import Principal
from app.security.sessions import current_sessions
from app.services import audit, notifications
from app.services.booking_documents import booking_documents


def request_export(principal: Principal, actor: audit.Actor) -> dict[str, Any]:
    """``POST /v1/me/export``: a job whose result is the caller's data (nobody else can read it)."""
    return submit("gdpr.export", {}, actor)


def _epoch(value: float) -> str:
    return rfc3339(datetime.fromtimestamp(value, UTC)) or ""


def export(run: JobRun) -> dict[str, Any]:
    """The ``gdpr.export`` job: the owner's data, read in a handful of queries."""
    assert run.owner_user_id is not None  # submitted by a person, for themself
    user_id = run.owner_user_id
    user = db.session.get(User, user_id)
    assert user is not None
    resident_row = db.session.execute(
        select(Resident, Unit.unit_number).join(Unit, Unit.id == Resident.unit_id).where(Resident.user_id == user_id)
    ).first()
    resident, bookings = None, []
    if resident_row is not None:
        profile, unit_number = resident_row
        resident = ExportedResident(
            id=str(profile.id),
            building_id=str(profile.building_id),
            unit_id=str(profile.unit_id),
            unit_number=unit_number,
            first_name=profile.first_name,
            last_name=profile.last_name,
            rut=profile.rut,
            phone=profile.phone,
            status=str(profile.status),
            created_at=rfc3339(profile.created_at) or "",
        )
        rows = db.session.execute(
            select(Booking).where(Booking.resident_id == profile.id).order_by(Booking.created_at, Booking.id)
        ).scalars()
        bookings = booking_documents(list(rows))
    about_them = [and_(AuditLog.entity_type == "user", AuditLog.entity_id == str(user_id))]
    if resident_row is not None:
        about_them.append(and_(AuditLog.entity_type == "resident", AuditLog.entity_id == str(resident_row[0].id)))
    trail = []
    for row in db.session.execute(
        select(AuditLog).where(or_(AuditLog.actor_id == user_id, *about_them)).order_by(AuditLog.id)
    ).scalars():
        document = AuditLogDocument.of(row)
        if row.actor_id != user_id:
            document = document.model_copy(update={"ip": None, "actor_id": None})  # the staff member's
        trail.append(document)
    sessions = [
        ExportedSession(
            session_id=s.session_id,
            created_at=_epoch(s.created_at),
            last_seen_at=_epoch(s.last_seen_at),
            ip=s.ip,
            user_agent=s.user_agent,
        )
        for s in sorted(current_sessions().list_for_user(str(user_id)), key=lambda s: s.created_at)
    ]
    result = ExportResult(
        generated_at=rfc3339(datetime.now(UTC)) or "",
        user=ExportedUser(
            id=str(user.id),
            email=user.email,
            platform_role=user.platform_role,
            mfa_enabled=user.mfa_enabled,
            banned_at=rfc3339(user.banned_at),
            created_at=rfc3339(user.created_at) or "",
        ),
        resident=resident,
        bookings=bookings,
        sessions=sessions,
        notifications=notifications.export_for_user(user_id),
        audit_events=trail,
    )
    audit.record("user.exported", audit.Actor.job(user_id), entity_type="user", entity_id=user_id)
    return result.model_dump(mode="json")
