"""The backend for development and tests without Twilio credentials: it sends nothing.

Each message is kept (the last ``keep``, in memory, per process) and answered with a sid that
is recognisably fake: ``SMrecorded`` + 24 hex digits has a real sid's shape and length, but
Twilio's are ``SM`` + 32 hex digits, so no real sid can ever look like it. The status is ``sent``:
the message went as far as it ever will, and no status callback will move it. The destination is
validated as for Twilio, so a bad phone fails the same way in development as in production.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque

from app.notifications.backend import OutboundMessage, SendResult

log = logging.getLogger(__name__)

RECORDED_SID_PREFIX = "SMrecorded"
RECORDED_STATUS = "sent"


class RecordingBackend:
    name = "recording"

    def __init__(self, keep: int = 1000) -> None:
        self._recorded: deque[OutboundMessage] = deque(maxlen=keep)
        self._lock = threading.Lock()

    @property
    def recorded(self) -> list[OutboundMessage]:
        with self._lock:
            return list(self._recorded)

    def send(self, message: OutboundMessage) -> SendResult:
        message.whatsapp_to()  # refuse what Twilio would refuse
        result = SendResult(provider_sid=RECORDED_SID_PREFIX + secrets.token_hex(12), status=RECORDED_STATUS)
        with self._lock:
            self._recorded.append(message)
        log.info(
            "notification recorded",
            extra={
                "template": message.rendered.template.value,
                "notification_id": message.reference,
                "provider_sid": result.provider_sid,
            },
        )
        return result
