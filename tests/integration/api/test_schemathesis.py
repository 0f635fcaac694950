"""``schemathesis run --checks all`` against the live stack as every role: 0 failures.

Each role fuzzes every operation through gunicorn, as a client would, with every check
schemathesis has: no 5xx, only documented statuses and content types, bodies that match their
schemas, schema-valid requests accepted and schema-invalid ones refused, auth not ignored. A
CI-sized run (``FUZZ_MAX_EXAMPLES``, default 4 per operation: over 200 cases per role) runs in
``make test``; ``make fuzz`` runs it with 60 per operation (over 2,000 per role).

The two operations that end the caller's own session (``logout``, ``logout_all``) are fuzzed
apart, by a user of their own, so they cannot turn a role's run into a run of 401s.
"""

from __future__ import annotations

import json
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

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "4"))
MIN_CASES = int(os.environ.get("FUZZ_MIN_CASES", "200"))
#: The coverage phase (every boundary of every schema, some 2,000 cases per role whatever
#: ``--max-examples`` says) runs in ``make fuzz``; ``make test`` keeps to examples and fuzzing.
PHASES = os.environ.get("FUZZ_PHASES", "examples,fuzzing,stateful")
SESSION_ENDERS = ("logout", "logout_all")
CONFIG = ROOT / "tests" / "schemathesis.toml"


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


def config_with_known_ids(live: LiveStack, path: Path) -> Path:
    """tests/schemathesis.toml, plus the world's real ids as dictionaries for path parameters.

    Most generated ids are random (a 404); with these, most requests reach a real building, spot
    or block, so the 2xx bodies themselves are checked against their schemas.
    """
    a, b = live.world.a, live.world.b
    known = {
        "building_id": [*a.buildings.values(), *b.buildings.values()],
        "organization_id": [a.organization_id, b.organization_id],
        "spot_id": [*a.spots.values(), *b.spots.values()],
        "block_id": [*a.blocks.values(), *b.blocks.values()],
        "resident_id": [*a.residents.values(), *b.residents.values()],
    }
    lines = [CONFIG.read_text(), "", "[dictionaries]"]
    lines += [f"{name} = {{ values = {json.dumps(values)} }}" for name, values in known.items()]
    lines += ["", "[parameters]"]
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}' for name in known]
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis(live: LiveStack, headers: dict[str, str], report: Path, *operation_filter: str) -> tuple[int, str]:
    argv = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config_with_known_ids(live, report.with_suffix(".toml"))),
        "run",
        f"{live.base_url}/openapi.json",
        "--checks",
        "all",
        "--workers",
        "1",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        PHASES,
        "--seed",
        os.environ.get("FUZZ_SEED", "20261201"),
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "40",
        "--no-color",
        "--continue-on-failure",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *operation_filter,
    ]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    # Run from the test's own directory: schemathesis keeps a cache (.schemathesis/) where it runs.
    done = subprocess.run(argv, cwd=report.parent, capture_output=True, text=True, timeout=1800)
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
