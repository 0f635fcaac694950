"""Test harness: real PostgreSQL, Redis and Celery workers (see tests/support/stack.py and devstack/).

``make test`` passes ``DATABASE_URL``/``REDIS_URL`` (embedded servers, or yours) and fresh keys.
The session migrates a template database once with ``flask db upgrade`` (the real CLI), then
clones it for the shared stack and for every isolated stack.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from app.observability import logging as app_logging
from devstack.env import KEY_NAMES, generate_keys, with_tools
from tests.support.stack import BIN, ROOT, Stack, create_database, drop_database, with_database, with_redis_db

BASE_DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BASE_REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SESSION_REDIS_DB = 1
ISOLATED_REDIS_DBS = itertools.cycle(range(2, 16))
_isolated_counter = itertools.count(1)


def _keys() -> dict[str, str]:
    """The keys ``make test`` passed, or fresh development ones (devstack.env.generate_keys)."""
    fresh = generate_keys()
    return {name: os.environ.get(name) or fresh[name] for name in KEY_NAMES}


def stack_env(database: str, redis_db: int, keys: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(keys)
    env.update(
        APP_ENV="test",
        DATABASE_URL=with_database(BASE_DATABASE_URL, database),
        REDIS_URL=with_redis_db(BASE_REDIS_URL, redis_db),
        LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
    )
    return with_tools(env)


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    return _keys()


@pytest.fixture(scope="session")
def template_database(keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated by the real ``flask db upgrade``; never connected to, only cloned."""
    name = f"estacionate_test_template_{os.getpid()}"
    create_database(BASE_DATABASE_URL, name)
    env = stack_env(name, SESSION_REDIS_DB, keys)
    subprocess.run([str(BIN / "flask"), "--app", "app", "db", "upgrade"], env=env, cwd=ROOT, check=True)
    yield name
    drop_database(BASE_DATABASE_URL, name)


@pytest.fixture(scope="session")
def api_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The in-process API logs JSON lines here, as gunicorn's workers would to stdout."""
    path = tmp_path_factory.mktemp("logs") / "api.log"
    stream = open(path, "a", buffering=1)  # noqa: SIM115 (open for the whole session)
    app_logging.configure("api", "INFO", stream=stream)
    yield path
    stream.close()


@pytest.fixture(scope="session")
def stack(
    template_database: str, keys: dict[str, str], api_log: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    name = f"estacionate_test_{os.getpid()}"
    create_database(BASE_DATABASE_URL, name, template=template_database)
    env = stack_env(name, SESSION_REDIS_DB, keys)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    shared = Stack(env, tmp_path_factory.mktemp("stack"), "session")
    yield shared
    shared.close()
    drop_database(BASE_DATABASE_URL, name)


@pytest.fixture(scope="session")
def worker(stack: Stack) -> Stack:
    """The shared stack with a real Celery worker process (prefork, 2 children) running."""
    stack.start_worker()
    return stack


@pytest.fixture
def isolated_stack_factory(
    template_database: str, keys: dict[str, str], api_log: Path, tmp_path: Path
) -> Iterator[Callable[..., Stack]]:
    """Stacks of their own (database, Redis db, processes), optionally with other settings."""
    made: list[tuple[Stack, str]] = []

    def make(**overrides: str) -> Stack:
        name = f"estacionate_test_{os.getpid()}_iso{next(_isolated_counter)}"
        create_database(BASE_DATABASE_URL, name, template=template_database)
        env = {**stack_env(name, next(ISOLATED_REDIS_DBS), keys), **overrides}
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        own = Stack(env, tmp_path / f"stack-{len(made)}", "iso")
        made.append((own, name))
        return own

    yield make
    for own, name in made:
        own.close()
        drop_database(BASE_DATABASE_URL, name)


@pytest.fixture
def isolated_stack(isolated_stack_factory: Callable[..., Stack]) -> Stack:
    """A stack of its own for tests that stop, starve or kill workers."""
    return isolated_stack_factory()


@pytest.fixture(scope="session")
def oathtool() -> str:
    """Debian's oathtool (a standard TOTP implementation): a prerequisite `make test` installs."""
    found = shutil.which("oathtool")
    if found is None:
        pytest.fail("oathtool is missing: run `make test-prerequisites` (or apt-get install oathtool)")
    return found


@pytest.fixture
def user(stack: Stack) -> dict[str, str]:
    return stack.create_user()


@pytest.fixture
def auth(stack: Stack, user: dict[str, str]) -> dict[str, str]:
    return stack.login(user)


@pytest.fixture(scope="session")
def world(stack: Stack) -> Any:
    """Two organizations built through the API (tests/support/world.py); tests must not change it."""
    from tests.support.world import build_world

    return build_world(stack)


@pytest.fixture
def fake_twilio() -> Iterator[Any]:
    """A Twilio-compatible Messages API on a local port (tests/support/fake_twilio.py)."""
    from tests.support.fake_twilio import FakeTwilio

    with FakeTwilio() as fake:
        yield fake
