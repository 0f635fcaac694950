"""SQLAlchemy 2.x typed models, one module per aggregate.

Importing this package registers every table on ``Base.metadata`` (Alembic relies on it).
"""

from app.models.audit import AuditLog
from app.models.availability import AvailabilityBlock, BlockDuration, BlockStatus
from app.models.blocklist import BlocklistEntry
from app.models.booking import AccessEvent, Booking
from app.models.building import Building, Unit, VisitorSpot
from app.models.event import Event, EventReceipt
from app.models.idempotency import IdempotencyKey
from app.models.job import Job, JobStatus
from app.models.mfa import MfaRecoveryCode
from app.models.notification import (
    Notification,
    NotificationOptOut,
    NotificationPreference,
    NotificationStatus,
    PasswordResetCode,
    Recipient,
)
from app.models.organization import Membership, MembershipRole, Organization, membership_buildings
from app.models.pricing import PricingRule
from app.models.resident import Resident, ResidentStatus
from app.models.user import PlatformRole, User
from app.models.webhook_delivery import WebhookDelivery
from app.models.webhook_endpoint import EndpointDelivery, WebhookEndpoint

__all__ = [
    "AccessEvent",
    "AuditLog",
    "AvailabilityBlock",
    "BlockDuration",
    "BlockStatus",
    "BlocklistEntry",
    "Booking",
    "Building",
    "EndpointDelivery",
    "Event",
    "EventReceipt",
    "IdempotencyKey",
    "Job",
    "JobStatus",
    "Membership",
    "MembershipRole",
    "MfaRecoveryCode",
    "Notification",
    "NotificationOptOut",
    "NotificationPreference",
    "NotificationStatus",
    "Organization",
    "PasswordResetCode",
    "PlatformRole",
    "PricingRule",
    "Recipient",
    "Resident",
    "ResidentStatus",
    "Unit",
    "User",
    "VisitorSpot",
    "WebhookDelivery",
    "WebhookEndpoint",
    "membership_buildings",
]
