"""Celery side: the worker/beat entry point and task modules (thin shells over services)."""
