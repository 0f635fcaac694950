"""WhatsApp notifications: the ``NotificationBackend`` protocol and its Twilio and recording backends.

``backend_from_settings`` picks one the way API.md says: whenever ``TWILIO_ACCOUNT_SID`` is set, in
every ``APP_ENV``, messages go to Twilio at ``TWILIO_API_BASE``; without it they are recorded only.
(Production's refusal to start without Twilio settings lives with the settings validation.)
"""

from __future__ import annotations

from app.notifications.backend import (
    STATUS_CALLBACK_PATH,
    NotificationBackend,
    OutboundMessage,
    ProviderError,
    SendResult,
    status_callback_url,
)
from app.notifications.recording import RECORDED_SID_PREFIX, RecordingBackend
from app.notifications.twilio_backend import TwilioBackend
from config.settings import ConfigurationError, Settings


def backend_from_settings(settings: Settings) -> NotificationBackend:
    if not settings.twilio_account_sid:
        return RecordingBackend()
    missing = [
        name
        for name, value in (
            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
            ("TWILIO_WHATSAPP_FROM", settings.twilio_whatsapp_from),
            ("PUBLIC_BASE_URL", settings.public_base_url),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError([f"TWILIO_ACCOUNT_SID is set but {', '.join(missing)} is not"])
    try:
        return TwilioBackend(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            whatsapp_from=settings.twilio_whatsapp_from,
            status_callback_url=status_callback_url(settings.public_base_url),
            api_base=settings.twilio_api_base,
            content_sids=settings.twilio_content_sids,
        )
    except ValueError as exc:
        raise ConfigurationError([str(exc)]) from None


__all__ = [
    "RECORDED_SID_PREFIX",
    "STATUS_CALLBACK_PATH",
    "NotificationBackend",
    "OutboundMessage",
    "ProviderError",
    "RecordingBackend",
    "SendResult",
    "TwilioBackend",
    "backend_from_settings",
    "status_callback_url",
]
