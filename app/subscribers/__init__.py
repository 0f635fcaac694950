"""Durable subscribers: one module per subscriber, each registering with ``@subscriber``.

``create_app`` imports this package, so every process (API, worker, beat) knows every
subscriber. A subscriber module lists itself in ``MODULES`` below and imports only what it uses
(services included: subscribers sit at the service layer's level). See ``app/events/subscribers.py``.
"""

import importlib

#: Subscriber modules under this package.
MODULES: tuple[str, ...] = ("operator_webhooks", "notifications")

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
