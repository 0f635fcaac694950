"""The fault suite (``make chaos`` / ``python -m tests.chaos``; ``--ci`` is the part ``make test`` runs).

Real processes and real faults, on servers the suite starts itself: the production stack of
``bench/stack.py`` (gunicorn API with 2 processes, every Celery worker of the Procfile, beat) on an
embedded PostgreSQL and Redis that it can stop, kill and restart. Each scenario puts a bounded load of
bookings (each on a block of its own, plus groups contending for one block) and pings on the stack,
from client threads that keep going through the fault the way a careful client would (log in again
after a 401, wait out a 503's ``Retry-After``, retry a submission with the same ``Idempotency-Key``),
injects its fault, undoes it, and reports one row:

    requests by status code during the fault, accepted jobs, jobs that finished, lost (accepted but
    not terminal within the recovery deadline), ran twice (a booking effect applied twice), and
    seconds to recover (from the end of the fault until every job the clients had started is
    terminal and the API answers 200 again).

A scenario passes when: no request answered 500 (or any 5xx but 503), went unanswered or hung past
10 s; nothing was lost or ran twice; every block holds at most one live booking, exactly one when a
job won it (SQL); every accepted job is terminal; the stack recovered within the deadline; no
process died; and the fault provably happened.

Layout (not collected by pytest: no ``test_*`` modules here; ``tests/integration/test_fault_suite.py``
runs ``--ci``):

- ``scenarios.py`` the scenario list, as data: name, fault, hold, recovery deadline
- ``faults.py``    one function per fault: inject, hold, undo, prove
- ``stack.py``     the stack and the hands on its servers and processes
- ``load.py``      the client threads and their retry policy; every answer recorded
- ``inventory.py`` the run's tenant and each scenario's blocks
- ``run.py``       one scenario from start to verdict
- ``verdict.py``   what the database says, the row and its checks
- ``report.py``    the table and the JSON document
- ``cli.py``       arguments, the run, exit status
"""
