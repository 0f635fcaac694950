"""A Celery worker app with the contract subscribers registered (``celery -A tests.support.event_worker``)."""

from tests.support import event_subscribers
from workers.celery_app import celery, flask_app

event_subscribers.register()

__all__ = ["celery", "flask_app"]
