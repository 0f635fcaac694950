"""``schemathesis run --checks all`` against the live stack as every role: 0 failures.

Each role fuzzes every operation through gunicorn, as a client would, with every check
schemathesis has: no 5xx, only documented statuses and content types, bodies that match their
schemas, schema-valid requests accepted and schema-invalid ones refused, auth not ignored. A
CI-sized run (``FUZZ_MAX_EXAMPLES``, default 6 per operation: over 200 cases per role) runs in
``make test``; ``make fuzz`` runs it with 60 per operation (over 2,000 per role).

The two operations that end the caller's own session (``logout``, ``logout_all``) are fuzzed
apart, by a user of their own, so they cannot turn a role's run into a run of 401s.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BASE_DATABASE_URL, ISOLATED_REDIS_DBS, stack_env
from tests.support.live import ROLES, LiveStack, live_stack
from tests.support.stack import BIN, ROOT

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "6"))
MIN_CASES = int(os.environ.get("FUZZ_MIN_CASES", "200"))
SESSION_ENDERS = ("logout", "logout_all")


@pytest.fixture(scope="module")
def live(template_database: str, keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    redis_db = next(ISOLATED_REDIS_DBS)
    with live_stack(
        BASE_DATABASE_URL,
        template_database,
        lambda name: stack_env(name, redis_db, keys),
        tmp_path_factory.mktemp("schemathesis"),
    ) as stack:
        yield stack


def schemathesis(live: LiveStack, headers: dict[str, str], report: Path, *operation_filter: str) -> tuple[int, str]:
    argv = [
        str(BIN / "schemathesis"),
        "run",
        f"{live.base_url}/openapi.json",
        "--checks",
        "all",
        "--workers",
        "1",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        os.environ.get("FUZZ_SEED", "20261201"),
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "40",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *operation_filter,
    ]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return done.returncode, done.stdout + done.stderr


def cases_run(output: str) -> int:
    found = re.search(r"Test cases:\s*(\d+) generated", output)
    assert found, output[-3000:]
    return int(found.group(1))


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_reports_no_failure_for_the_role(live: LiveStack, role: str, tmp_path: Path) -> None:
    excluded = [arg for op in SESSION_ENDERS for arg in ("--exclude-operation-id", op)]
    code, output = schemathesis(live, live.headers[role], tmp_path / "junit.xml", *excluded)
    assert code == 0, output[-20000:]
    assert cases_run(output) >= MIN_CASES, output[-3000:]


def test_schemathesis_reports_no_failure_for_the_operations_that_end_a_session(live: LiveStack, tmp_path: Path) -> None:
    for operation in SESSION_ENDERS:
        headers = live.stack.login(live.stack.create_user())
        code, output = schemathesis(live, headers, tmp_path / f"{operation}.xml", "--include-operation-id", operation)
        assert code == 0, output[-20000:]
        assert cases_run(output) > 0
