"""Celery tasks, one module per family. Each task is a thin shell: it calls a service.

A job task hands its handler to the runner (``app.jobs.execute``), whose transaction is the job's
unit of work; any other task (beat's) opens ``unit_of_work()`` around the service it calls.
"""
