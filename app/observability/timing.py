"""One clock per HTTP request, read by everyone who reports on it.

The edge starts it before any other hook (so even a request refused there is timed), and the
first reader fixes the figure: the Prometheus histogram and the access log line then report the
same duration instead of two slightly different measurements of one request.
"""

from __future__ import annotations

import time

from flask import g

#: The clock; a test replaces it to prove every consumer reads the one measurement.
_clock = time.perf_counter


def start() -> None:
    """Start the request's clock (the edge's first before-request hook)."""
    g.request_started = _clock()


def elapsed_seconds() -> float | None:
    """Seconds from ``start()`` to the first call; later calls return that same figure.

    ``None`` when the clock never started (a hook that ran before the edge's, or no request).
    """
    if "request_seconds" in g:
        return float(g.request_seconds)
    started = g.get("request_started")
    if started is None:
        return None
    g.request_seconds = _clock() - started
    return float(g.request_seconds)
