"""WhatsApp notifications: the ``NotificationBackend`` protocol and its Twilio and recording backends.

``backend_from_settings`` picks one the way API.md says: whenever ``TWILIO_ACCOUNT_SID`` is set, in
every ``APP_ENV``, messages go to Twilio at ``TWILIO_API_BASE``; without it they are recorded only.
(Production's refusal to start without Twilio settings lives with the settings validation.)
"""

from __future__ import annotations

import os
import threading

from flask import Flask, current_app

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


EXTENSION_KEY = "estacionate.notifications"


class BackendHolder:
    """The process's backend, built from the settings once per process.

    A ``TwilioBackend`` holds a pooled HTTP session, which must not cross a prefork worker's fork:
    the holder rebuilds the backend in a process whose id differs from the one that built it. The
    first one is built at ``init_app``, so a configuration the backend refuses stops the app at
    start (one clear line), not at the first message.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._backend = backend_from_settings(settings)

    def get(self) -> NotificationBackend:
        with self._lock:
            if self._pid != os.getpid():
                self._backend, self._pid = backend_from_settings(self.settings), os.getpid()
            return self._backend


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions[EXTENSION_KEY] = BackendHolder(settings)


def current_backend() -> NotificationBackend:
    holder: BackendHolder = current_app.extensions[EXTENSION_KEY]
    return holder.get()


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
    "current_backend",
    "init_app",
    "status_callback_url",
]
