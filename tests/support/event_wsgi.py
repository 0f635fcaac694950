"""The API (``wsgi:app``) with the contract subscribers registered, for the events acceptance tests."""

from tests.support import event_subscribers
from wsgi import app

event_subscribers.register()

__all__ = ["app"]
