"""Benchmarks (``make bench`` / ``python -m bench [--scenario NAME] [--quick]``).

Not tests: each scenario measures one figure on the stack started the way production runs it
(gunicorn API and Celery workers from the Procfile, beat off), measures its baseline in the same
run on the same machine, and prints the ratio against a target. Pass/fail is reported, never
asserted; only a scenario's correctness checks (every job ran exactly once...) set the exit code.

Layout:

- ``bench/cli.py``           argument parsing, runs the chosen scenarios, prints and writes results
- ``bench/stack.py``         servers, a throwaway database, keys, the user, API and worker processes
- ``bench/client.py``        the HTTP client and the closed-loop concurrent load generator
- ``bench/celery_noop.py``   a raw Celery app with a no-op task: the queue baseline
- ``bench/seed.py``          creates a benchmark user through the services (run in the stack's env)
- ``bench/cpu.py``           where the CPU went during a phase (API, worker, servers, client, other)
- ``bench/report.py``        results, the table and ``bench/results/latest.json``
- ``bench/scenarios/<name>.py``  one module per scenario (``NAME``, ``DESCRIPTION``, ``run(ctx)``)

A new scenario is a new module under ``bench/scenarios/``: it is discovered by name, receives a
``ScenarioContext`` (the shared stack, sizes, concurrency) and returns a ``ScenarioResult``.
"""
