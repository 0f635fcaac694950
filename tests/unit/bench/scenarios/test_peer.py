"""The ``peer`` scenario where the peer app is absent, and the client adapter's requests.

The scenario itself runs in ``tests/integration/test_bench_harness.py`` (``python -m bench --quick``).
"""

from pathlib import Path

import jwt
import pytest

from bench import peer_stack
from bench.checks import booking_body
from bench.peer_client import booking, token
from bench.report import ScenarioResult, document, table
from bench.scenarios import ScenarioContext, available
from bench.scenarios import peer as scenario

SECRET = "a-secret-of-at-least-thirty-two-bytes"


class Untouchable:
    """A stack that fails the test if the scenario so much as looks at it."""

    def __getattr__(self, name):
        raise AssertionError(f"a skipped scenario used the stack ({name})")


def test_without_the_peer_app_the_scenario_is_skipped_and_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(peer_stack.PEER_DIR_VARIABLE, str(tmp_path))
    ctx = ScenarioContext(stack=Untouchable(), quick=True, concurrency=16)

    result = scenario.run(ctx)

    assert result.skipped == f"peer app not found at {tmp_path.resolve()}"
    assert result.ok and not result.checks_passed and not result.meets_target


def test_a_skipped_scenario_is_printed_as_such_and_fails_nothing():
    passed = ScenarioResult.skip("peer", "peer app not found at /nowhere")

    printed = table([passed])
    doc = document([passed], options={}, stack={})

    assert "SKIPPED" in printed.splitlines()[2]
    assert "peer: skipped: peer app not found at /nowhere" in printed
    assert doc["all_checks_passed"] is True
    assert doc["scenarios"][0]["skipped"] == "peer app not found at /nowhere"


def test_a_directory_without_the_peer_files_is_not_the_peer_app(tmp_path):
    (tmp_path / "peer_app").mkdir()
    (tmp_path / "peer_app" / "__init__.py").write_text("")
    (tmp_path / "wsgi.py").write_text("")
    assert not peer_stack.is_peer_app(tmp_path)
    (tmp_path / "make_celery.py").write_text("")
    assert peer_stack.is_peer_app(tmp_path)


def test_the_peer_app_is_looked_for_next_to_the_repository_unless_told(monkeypatch):
    monkeypatch.delenv(peer_stack.PEER_DIR_VARIABLE, raising=False)
    assert peer_stack.peer_dir() == (peer_stack.ROOT.parent / "shared" / "peer").resolve()
    monkeypatch.setenv(peer_stack.PEER_DIR_VARIABLE, "/somewhere/else")
    assert peer_stack.peer_dir() == Path("/somewhere/else")


def test_it_runs_right_after_bookings_whose_figure_it_reuses():
    names = list(available())
    assert names.index("peer") == names.index("bookings") + 1


def test_the_peer_gets_our_benchmark_booking_in_its_own_field_names():
    ours = booking_body("8a0f0a9e-57a4-4a39-9d0c-7d1c7a3b8e21", 7)
    assert booking("8a0f0a9e-57a4-4a39-9d0c-7d1c7a3b8e21", 7) == {
        "block_id": ours["availability_block_id"],
        "visitor_name": ours["visitor_name"],
        "plate": ours["vehicle_plate"],
    }


def test_the_peer_token_is_what_its_jwt_check_requires():
    minted = token("5c4d6a1e-0d53-4c8f-9a57-3f1e2b7c9d10", SECRET)
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    assert claims["sub"] == "5c4d6a1e-0d53-4c8f-9a57-3f1e2b7c9d10"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(minted, "another-secret-of-thirty-two-bytes!", algorithms=["HS256"])


@pytest.mark.parametrize(("celery_ms", "healthz_ms", "expected"), [(1.87, 1.41, 4.69), (None, 1.0, None)])
def test_the_floors_sum_is_one_round_trip_and_two_requests(celery_ms, healthz_ms, expected):
    assert scenario._floors(celery_ms, healthz_ms) == expected
