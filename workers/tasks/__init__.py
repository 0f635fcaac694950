"""Celery tasks, one module per family. Each task is a thin shell: it calls a service."""
