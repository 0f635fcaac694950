"""Jobs: the durable record of every piece of asynchronous work.

The row, not Celery's result backend, is the truth: a Celery message carries only the job id,
and payload, result and error are encrypted because they can hold visitor names, plates and
phones. ``version`` changes on every state transition so workers can compare-and-swap.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.columns import CreatedAt, Timestamp, UpdatedAt, UUIDPk
from app.models.types import EncryptedJSON, EncryptedText


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index("ix_jobs_owner_recent", "owner_user_id", text("created_at DESC"), text("id DESC")),
        # The outbox relay scans only unfinished jobs.
        Index("ix_jobs_relay", "dispatch_after", postgresql_where=text("status IN ('queued', 'running')")),
        # The per-user quota of unfinished jobs counts at most N entries of this (app/jobs/submit.py).
        Index("ix_jobs_owner_unfinished", "owner_user_id", postgresql_where=text("status IN ('queued', 'running')")),
        # The nightly purge walks finished jobs oldest first (app/services/retention.py).
        Index("ix_jobs_finished", "finished_at", postgresql_where=text("status IN ('succeeded', 'failed')")),
    )

    id: Mapped[UUIDPk]
    type: Mapped[str] = mapped_column(Text, nullable=False)
    #: Who submitted it; NULL for system jobs (CLI, beat), which only platform admins can see.
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(Text, nullable=False, default=JobStatus.QUEUED)
    #: Deferred (like the callback URL): the job document never shows them, so reading a job decrypts
    #: neither, and a job whose payload no key opens can still be read and reported.
    payload: Mapped[Any] = mapped_column(EncryptedJSON("jobs.payload"), nullable=False, deferred=True)
    result: Mapped[Any | None] = mapped_column(EncryptedJSON("jobs.result"))
    error: Mapped[Any | None] = mapped_column(EncryptedJSON("jobs.error"))
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    #: Publishes by the relay since the last claim; too many means no worker can take the job.
    dispatches: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    callback_url: Mapped[str | None] = mapped_column(
        "callback_url_encrypted", EncryptedText("jobs.callback_url"), deferred=True
    )
    trace_id: Mapped[str | None] = mapped_column(Text)
    #: When the outbox relay should (re)publish this job if it is still queued or its lease expired.
    dispatch_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    lease_expires_at: Mapped[Timestamp]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    started_at: Mapped[Timestamp]
    finished_at: Mapped[Timestamp]
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    #: A batch job's resume point (``JobRun.checkpoint(..., state=)``), committed with each batch:
    #: ids and counts only, never personal data. A run taken over after a crash starts from it.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
