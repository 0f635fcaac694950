"""SQLAlchemy 2.x typed models, one module per aggregate.

Importing this package registers every table on ``Base.metadata`` (Alembic relies on it).
"""

from app.models.audit import AuditLog
from app.models.idempotency import IdempotencyKey
from app.models.job import Job, JobStatus
from app.models.mfa import MfaRecoveryCode
from app.models.user import PlatformRole, User
from app.models.webhook_delivery import WebhookDelivery

__all__ = [
    "AuditLog",
    "IdempotencyKey",
    "Job",
    "JobStatus",
    "MfaRecoveryCode",
    "PlatformRole",
    "User",
    "WebhookDelivery",
]
