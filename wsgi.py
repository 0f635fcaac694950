"""The WSGI entry point for gunicorn (``gunicorn wsgi:app``)."""

from app import create_app
from app.observability import logging as app_logging
from config.settings import Settings

settings = Settings.from_env()
app_logging.configure("api", settings.log_level)
app = create_app(settings)
