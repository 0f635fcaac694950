"""Benchmarks (``make bench`` / ``python -m bench [--scenario NAME] [--quick]``).

Not tests: each scenario measures one figure on the stack started the way production runs it
(gunicorn API and Celery workers from the Procfile, beat off), measures its baseline in the same
run on the same machine, and prints the ratio against a target. Pass/fail is reported, never
asserted; only a scenario's correctness checks (every job ran exactly once...) set the exit code.

Layout:

- ``bench/cli.py``           argument parsing, runs the chosen scenarios, prints and writes results
- ``bench/stack.py``         servers, a throwaway database, keys, the user, API and worker processes
- ``bench/client.py``        the HTTP client and the closed-loop concurrent load generator
- ``bench/celery_noop.py``   a raw Celery app with a no-op task: the queue baseline (``measure``)
- ``bench/peer_stack.py``    the peer app (``../shared/peer``) on the run's servers with our topology
- ``bench/peer_client.py``   the client's adapter for the peer's API (its JWT, submit and poll)
- ``bench/seed.py``          users and tenants (organization, buildings, residents, staff with TOTP)
                             made through the models, in the stack's environment
- ``bench/tenant.py``        a scenario's own tenant; spots and blocks inserted set-based with SQL
- ``bench/checks.py``        correctness checks read from the database (jobs, live bookings)
- ``bench/cpu.py``           where the CPU went during a phase (API, worker, servers, client, other),
                             and what one operation cost each of them
- ``bench/memory.py``        peak RSS of a process group while a phase runs
- ``bench/profile.py``       ``--profile DIR``: py-spy profiles of the API and worker per figure phase
- ``bench/report.py``        results, the table and ``bench/results/latest.json``
- ``bench/scenarios/<name>.py``  one module per scenario (``NAME``, ``DESCRIPTION``, ``ORDER``, ``run(ctx)``):
                             queue, bookings, peer, contention, accept, recalc, generate, login

What each scenario measures, its baseline, its target and the latest figures: ``bench/README.md``.

A new scenario is a new module under ``bench/scenarios/``: it is discovered by name, receives a
``ScenarioContext`` (the shared stack, sizes, concurrency) and returns a ``ScenarioResult``.
"""
