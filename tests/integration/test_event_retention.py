"""Events are purged EVENT_RETENTION_DAYS (30) after they occurred, their receipts with them."""

import uuid

from app.events import record
from app.services import retention
from app.unit_of_work import unit_of_work


def test_the_nightly_purge_deletes_events_older_than_thirty_days_and_their_receipts(isolated_stack):
    stack = isolated_stack
    ids = []
    with stack.context(), unit_of_work():
        for _ in range(5):
            user_id = uuid.uuid4()
            event = record(
                "user.banned",
                organization_id=None,
                building_id=None,
                aggregate=("user", user_id),
                data={"user_id": str(user_id)},
            )
            ids.append(str(event.id))
    old, recent = ids[:3], ids[3:]
    stack.sql("UPDATE events SET occurred_at = now() - interval '31 days' WHERE id::text = ANY(%s)", (old,))
    stack.sql("UPDATE events SET occurred_at = now() - interval '29 days' WHERE id::text = ANY(%s)", (recent,))
    stack.sql(
        "INSERT INTO event_receipts (subscriber, event_id) SELECT 'someone', id FROM events WHERE id::text = ANY(%s)",
        (ids,),
    )
    with stack.context():
        with unit_of_work():
            purged = retention.purge_events(batch=2)  # several batches
        with unit_of_work():
            again = retention.purge_events(batch=2)
    assert (purged, again) == (3, 0)
    assert {r[0] for r in stack.sql("SELECT id::text FROM events WHERE id::text = ANY(%s)", (ids,))} == set(recent)
    assert stack.sql("SELECT count(*) FROM event_receipts WHERE event_id::text = ANY(%s)", (old,)) == [(0,)]
    assert stack.sql("SELECT count(*) FROM event_receipts WHERE event_id::text = ANY(%s)", (recent,)) == [(2,)]


def test_the_purge_is_scheduled_nightly(isolated_stack):
    schedule = isolated_stack.app.extensions["celery"].conf.beat_schedule
    assert schedule["events.purge"]["task"] == "events.purge"
    assert schedule["events.relay"]["task"] == "events.relay"
