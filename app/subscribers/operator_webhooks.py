"""``operator_webhooks``: every event of an organization, fanned out to its webhook endpoints.

The subscriber's effect is the delivery rows (app/jobs/event_webhooks.py ``fan_out``), committed
with its receipt, so a redelivered event writes no second row and a lost message is resent by the
events relay. Sending happens later, in ``webhooks.deliver_event`` tasks, never inside this unit
of work (no network call while it is open). Events without an organization (platform events)
have no endpoint to go to.
"""

from app.events import subscriber
from app.jobs import event_webhooks
from app.models import Event

NAME = "operator_webhooks"  # stored in receipts: never rename


@subscriber(NAME, types=["*"])
def fan_out(event: Event) -> None:
    event_webhooks.fan_out(event)
