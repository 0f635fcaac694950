"""The ``NotificationBackend`` protocol (DESIGN.md "Notifications") and the values that cross it.

A backend takes one rendered message to one phone and either returns Twilio's sid and status or
raises ``ProviderError``; it never retries by itself (the delivery policy in
``app.domain.notifications`` decides, from the error, whether and when the job tries again), and
it keeps destinations and content out of everything it logs, raises or shows in a ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.domain.identity import normalize_phone
from app.domain.notifications import FailureClass, Rendered, SendFailure, classify

#: Where Twilio POSTs delivery statuses; signed over ``PUBLIC_BASE_URL`` + this path.
STATUS_CALLBACK_PATH = "/v1/webhooks/twilio/status"
WHATSAPP_PREFIX = "whatsapp:"


def status_callback_url(public_base_url: str) -> str:
    return public_base_url.rstrip("/") + STATUS_CALLBACK_PATH


@dataclass(frozen=True)
class OutboundMessage:
    #: The recipient's phone, E.164 (a 9-digit Chilean mobile is accepted and normalized).
    to: str = field(repr=False)
    rendered: Rendered
    #: Our id for the message (the notifications row), for log lines; never personal data.
    reference: str | None = None

    def whatsapp_to(self) -> str:
        """``whatsapp:+569...``; raises ValueError (without the value) when ``to`` is no phone number."""
        return WHATSAPP_PREFIX + normalize_phone(self.to.removeprefix(WHATSAPP_PREFIX))


@dataclass(frozen=True)
class SendResult:
    provider_sid: str
    #: The provider's status at acceptance (Twilio: ``queued`` or ``accepted``).
    status: str


class ProviderError(Exception):
    """A send that failed; ``failure`` is what the delivery policy needs to decide what happens next.

    ``maybe_sent`` is True when the request reached the provider and no answer came back (a read
    timeout, a dropped connection): Twilio may have accepted the message, and since it has no
    idempotency key, sending again may deliver it twice. The text names status and code only:
    Twilio's own messages quote the phone number (21211: "The 'To' number +569... is not valid").
    """

    def __init__(self, failure: SendFailure, *, maybe_sent: bool = False) -> None:
        self.failure = failure
        self.maybe_sent = maybe_sent
        super().__init__(self._describe())

    def __reduce__(self) -> tuple[type[ProviderError], tuple[SendFailure], dict[str, bool]]:
        # Exceptions pickle as ``cls(*args)``; ``args`` is the text here, so say how to rebuild.
        return (type(self), (self.failure,), {"maybe_sent": self.maybe_sent})

    def __setstate__(self, state: dict[str, bool]) -> None:
        self.maybe_sent = state["maybe_sent"]
        self.args = (self._describe(),)

    @property
    def status(self) -> int | None:
        return self.failure.http_status

    @property
    def code(self) -> int | None:
        return self.failure.error_code

    @property
    def timed_out(self) -> bool:
        return self.failure.timed_out

    @property
    def classification(self) -> FailureClass:
        return classify(self.failure)

    @property
    def retryable(self) -> bool:
        return self.classification is not FailureClass.PERMANENT

    @property
    def rate_limited(self) -> bool:
        return self.classification is FailureClass.RATE_LIMITED

    def _describe(self) -> str:
        kind = "permanent" if not self.retryable else "retryable"
        if self.failure.timed_out:
            what = "Twilio did not answer in time"
        elif self.failure.http_status is None:
            what = "Twilio could not be reached"
        else:
            code = f", code {self.failure.error_code}" if self.failure.error_code is not None else ""
            what = f"Twilio refused the message: HTTP {self.failure.http_status}{code}"
        maybe = "; the message may have been accepted" if self.maybe_sent else ""
        return f"{what} ({kind}{maybe})"


@runtime_checkable
class NotificationBackend(Protocol):
    #: ``twilio`` or ``recording``: shown in logs and metrics.
    name: str

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to the provider; raise ``ProviderError`` if it was not accepted."""
        ...
