"""gunicorn settings for the API (``gunicorn -c config/gunicorn.py wsgi:app``).

Threaded workers, because ``GET /v1/jobs/{id}?wait=`` holds a request for up to 30 s waiting
on Redis; logs are the app's JSON lines (gunicorn's access log is off: the app logs each request).
"""

import os

from gunicorn.glogging import Logger


class AppLogsRequests(Logger):
    """gunicorn's logger without its access log: the app logs each request (``app/api/edge.py``).

    With ``accesslog = None`` gunicorn still formats every request's access-log atoms before its
    logger drops the line (because ``logconfig_dict`` is set): 1.8 % of the API's CPU in the
    bookings profile, for nothing (bench/README.md "Changes for issue 15").
    """

    def access(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201 (gunicorn's signature)
        return None


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 (containers listen on all interfaces; make run sets HOST=127.0.0.1)
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "16"))
timeout = 60
graceful_timeout = 30
keepalive = 5
control_socket_disable = True
accesslog = None
logger_class = AppLogsRequests
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "static_fields": {"service": "api"},
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def child_exit(server, worker):  # noqa: ANN001, ANN201 (gunicorn hook signature)
    """Drop a dead worker's Prometheus files so its gauges do not linger."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
