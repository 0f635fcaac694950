"""The notifications subscriber: booking events become WhatsApp messages, one job per recipient.

``booking.confirmed`` and ``booking.cancelled`` go to the resident (unless they turned booking
updates off) and to the visitor when the booking has a phone; ``booking.checked_in`` goes to the
resident only. The rows and their ``notification.send`` jobs are written in the delivery's unit of
work, which also inserts this subscriber's receipt: a redelivered event finds the receipt and
queues nothing twice. Never rename it: the name is stored in receipts.
"""

from __future__ import annotations

import uuid

from app.events.subscribers import subscriber
from app.models import Event
from app.services import notifications


@subscriber("notifications", types=list(notifications.BOOKING_TEMPLATES))
def booking_messages(event: Event) -> None:
    notifications.for_booking_event(event.type, uuid.UUID(str(event.data["booking_id"])), event.occurred_at)
