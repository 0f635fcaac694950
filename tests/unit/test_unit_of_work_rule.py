"""The unit-of-work rule: no module under app/ or workers/ but app/unit_of_work.py and app/jobs/runner.py
commits or rolls back (scripts/check_no_commit.py, also run by ``make lint``)."""

import importlib.util
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_checker():
    spec = importlib.util.spec_from_file_location("check_no_commit", ROOT / "scripts" / "check_no_commit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = load_checker()


def test_no_module_outside_the_unit_of_work_and_the_runner_ends_a_transaction():
    assert checker.violations() == []


def test_the_rule_sees_every_spelling_of_a_commit_or_rollback():
    source = textwrap.dedent(
        """
        db.session.commit()
        session.rollback()
        self.connection.commit()
        get_session().rollback()
        # db.session.commit() in a comment does not count
        text = "db.session.rollback()"
        db.session.flush()
        commit()
        """
    )
    assert checker.violations_in(source) == [
        (2, "db.session.commit()"),
        (3, "session.rollback()"),
        (4, "self.connection.commit()"),
        (5, "get_session().rollback()"),
    ]


def test_the_rule_fails_for_a_module_that_commits(tmp_path):
    (tmp_path / "app" / "services").mkdir(parents=True)
    (tmp_path / "app" / "jobs").mkdir()
    (tmp_path / "workers").mkdir()
    (tmp_path / "app" / "unit_of_work.py").write_text("db.session.commit()\n")
    (tmp_path / "app" / "jobs" / "runner.py").write_text("db.session.rollback()\n")
    (tmp_path / "app" / "services" / "sneaky.py").write_text("def f():\n    db.session.commit()\n")
    (tmp_path / "workers" / "task.py").write_text("session.rollback()\n")
    assert checker.violations(tmp_path) == [
        "app/services/sneaky.py:2: db.session.commit()",
        "workers/task.py:1: session.rollback()",
    ]
